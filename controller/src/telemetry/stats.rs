//! Smoothed series: an exponentially weighted moving average over every
//! sample and percentiles over a sliding time window.
//!
//! Time is passed in as nanoseconds since the store's epoch, so the series
//! are deterministic and tests set the clock themselves.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Exponentially weighted moving average: each sample `x` moves the value
/// to `alpha * x + (1 - alpha) * value`; the first sample sets it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ewma {
    alpha: f64,
    value: Option<f64>,
}

impl Ewma {
    /// An average that weighs each new sample by `alpha` (clamped to
    /// `(0, 1]`).
    #[must_use]
    pub fn new(alpha: f64) -> Self {
        let alpha = if alpha.is_finite() && alpha > 0.0 {
            alpha.min(1.0)
        } else {
            1.0
        };
        Self { alpha, value: None }
    }

    /// Adds a sample; the new average.
    pub fn update(&mut self, x: f64) -> f64 {
        let v = match self.value {
            None => x,
            Some(v) => self.alpha.mul_add(x - v, v),
        };
        self.value = Some(v);
        v
    }

    /// The average, `None` before the first sample.
    #[must_use]
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// p50, p90 and p99 of the samples in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Samples in the window.
    pub samples: u64,
}

/// Significant decimal digits the histograms keep: values are exact below
/// 256 and within 1% above.
const SIGNIFICANT_DIGITS: u8 = 2;

/// Values above this (about 18 minutes in ns) are recorded as this.
pub const MAX_TRACKED: u64 = 1 << 40;

// TODO-perf: every series holds one histogram per window slice (a few kB
// each, growing with the largest value seen); a fabric of thousands of
// ports holds hundreds of MB. Fewer slices or a shared histogram per
// metric would cut that.

/// Percentiles over the last `buckets × bucket_ns` nanoseconds.
///
/// The window is a ring of histograms, one per `bucket_ns` slice of time;
/// a sample goes into the slice of its time, and a slice is cleared when
/// the ring comes back to it. Percentiles merge the slices still inside
/// the window, so the window slides by one slice at a time.
#[derive(Clone, Debug)]
pub struct WindowedPercentiles {
    bucket_ns: u64,
    /// `(slice number, histogram)`; slice number = time / `bucket_ns`.
    ring: Box<[(u64, Option<Histogram<u32>>)]>,
}

impl WindowedPercentiles {
    /// A window of `buckets` slices of `bucket_ns` each (both at least 1).
    #[must_use]
    pub fn new(buckets: usize, bucket_ns: u64) -> Self {
        Self {
            bucket_ns: bucket_ns.max(1),
            ring: vec![(u64::MAX, None); buckets.max(1)].into_boxed_slice(),
        }
    }

    fn slot(&self, slice: u64) -> usize {
        // The ring is small: the cast of the remainder cannot truncate.
        (slice % self.ring.len() as u64) as usize
    }

    /// Records `value` at time `now_ns`.
    pub fn record(&mut self, now_ns: u64, value: u64) {
        let slice = now_ns / self.bucket_ns;
        let i = self.slot(slice);
        let Some((at, hist)) = self.ring.get_mut(i) else {
            return;
        };
        if *at != slice {
            *at = slice;
            if let Some(h) = hist {
                h.reset();
            }
        }
        if hist.is_none() {
            // Two significant digits are within hdrhistogram's 1..=5.
            *hist = Histogram::new(SIGNIFICANT_DIGITS).ok();
        }
        if let Some(h) = hist {
            // The histogram grows to the largest value recorded; the clamp
            // bounds that growth whatever a report says.
            let _ = h.record(value.min(MAX_TRACKED));
        }
    }

    /// Percentiles of the samples recorded in the window that ends at
    /// `now_ns`; `None` when there are none.
    #[must_use]
    pub fn percentiles(&self, now_ns: u64) -> Option<Percentiles> {
        let current = now_ns / self.bucket_ns;
        let oldest = current.saturating_sub(self.ring.len() as u64 - 1);
        let mut merged: Option<Histogram<u32>> = None;
        for (slice, hist) in self.ring.iter() {
            let Some(h) = hist else { continue };
            if *slice < oldest || *slice > current || h.is_empty() {
                continue;
            }
            match &mut merged {
                None => merged = Some(h.clone()),
                Some(m) => {
                    // Same settings on both sides: adding cannot fail but
                    // for a value past an auto-resized range, never here.
                    let _ = m.add(h);
                }
            }
        }
        let m = merged?;
        Some(Percentiles {
            p50: m.value_at_quantile(0.50),
            p90: m.value_at_quantile(0.90),
            p99: m.value_at_quantile(0.99),
            samples: m.len(),
        })
    }
}

/// One measured quantity: its last value, its moving average, its
/// percentiles over the window, and when it was last updated.
#[derive(Clone, Debug)]
pub struct Series {
    last: u64,
    ewma: Ewma,
    window: WindowedPercentiles,
    samples: u64,
    updated_ns: u64,
}

/// A series as the snapshot shows it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MetricSummary {
    /// The last sample.
    pub last: u64,
    /// The moving average.
    pub ewma: f64,
    /// Percentiles over the window (`samples` = 0 when the window is
    /// empty).
    pub window: Percentiles,
    /// Samples since the series started.
    pub samples: u64,
    /// Milliseconds since the last sample.
    pub age_ms: u64,
}

impl Series {
    /// An empty series.
    #[must_use]
    pub fn new(alpha: f64, buckets: usize, bucket_ns: u64) -> Self {
        Self {
            last: 0,
            ewma: Ewma::new(alpha),
            window: WindowedPercentiles::new(buckets, bucket_ns),
            samples: 0,
            updated_ns: 0,
        }
    }

    /// Adds sample `value` taken at `now_ns`.
    pub fn record(&mut self, now_ns: u64, value: u64) {
        self.last = value;
        // u64 → f64 rounds above 2^53 ns (104 days): fine for an average.
        #[allow(clippy::cast_precision_loss)]
        self.ewma.update(value as f64);
        self.window.record(now_ns, value);
        self.samples += 1;
        self.updated_ns = now_ns;
    }

    /// When the last sample was taken.
    #[must_use]
    pub fn updated_ns(&self) -> u64 {
        self.updated_ns
    }

    /// The summary at `now_ns`; `None` before the first sample.
    #[must_use]
    pub fn summary(&self, now_ns: u64) -> Option<MetricSummary> {
        let ewma = self.ewma.value()?;
        Some(MetricSummary {
            last: self.last,
            ewma,
            window: self.window.percentiles(now_ns).unwrap_or_default(),
            samples: self.samples,
            age_ms: now_ns.saturating_sub(self.updated_ns) / 1_000_000,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_matches_hand_computed_values() {
        let mut e = Ewma::new(0.5);
        assert_eq!(e.value(), None);
        assert_eq!(e.update(100.0), 100.0);
        assert_eq!(e.update(200.0), 150.0);
        assert_eq!(e.update(50.0), 100.0);
        let mut e = Ewma::new(0.25);
        e.update(8.0);
        assert_eq!(e.update(16.0), 10.0);
    }

    #[test]
    fn percentiles_of_one_to_hundred() {
        let mut w = WindowedPercentiles::new(4, 1000);
        for v in 1..=100 {
            w.record(10, v);
        }
        let p = w.percentiles(10).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.samples), (50, 90, 99, 100));
    }

    #[test]
    fn large_values_keep_two_significant_digits() {
        let mut w = WindowedPercentiles::new(1, 1000);
        for v in [320, 640, 210, 1_000_000, u64::MAX] {
            w.record(0, v);
        }
        let p = w.percentiles(0).unwrap();
        assert!(p.p50.abs_diff(640) <= 640 / 100, "{p:?}");
        assert!(p.p90.abs_diff(MAX_TRACKED) <= MAX_TRACKED / 100, "{p:?}");
    }

    #[test]
    fn the_window_slides_one_slice_at_a_time() {
        // 3 slices of 1000 ns: [0, 3000) holds slices 0, 1, 2.
        let mut w = WindowedPercentiles::new(3, 1000);
        w.record(0, 10);
        w.record(1500, 20);
        w.record(2500, 30);
        assert_eq!(w.percentiles(2999).unwrap().samples, 3);
        // At 3000 slice 0 leaves the window.
        let p = w.percentiles(3000).unwrap();
        assert_eq!((p.samples, p.p50), (2, 20));
        // Slice 3 reuses slice 0's histogram, cleared first.
        w.record(3100, 40);
        let p = w.percentiles(3100).unwrap();
        assert_eq!((p.samples, p.p50, p.p99), (3, 30, 40));
        assert!(w.percentiles(10_000).is_none());
    }
}
