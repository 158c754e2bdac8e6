//! Intents: "connect these two hosts, with at least this bandwidth and at
//! most this latency". An intent keeps the paths of its pair that satisfy
//! it and gives them all the weight; when none does, it says why for each
//! path, so the operator sees what is missing.

use std::fmt;
use std::time::Duration;

use super::routes::{Reason, Routes, WeightUpdate};
use super::te::quantise;
use crate::topology::{Bandwidth, DeviceIx, LinkId, Topology};

/// What a pair of hosts needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// Source host.
    pub src: DeviceIx,
    /// Destination host.
    pub dst: DeviceIx,
    /// Spare capacity a path must offer (its narrowest link's headroom).
    pub min_bandwidth: Option<Bandwidth>,
    /// One-way latency a path must not exceed (sum of measured latencies).
    pub max_latency: Option<Duration>,
}

/// Why one path does not satisfy an intent.
#[derive(Debug, Clone, PartialEq)]
pub enum Shortfall {
    /// A link on the path is down.
    Down,
    /// Spare capacity on the path, bits per second.
    Bandwidth(f64),
    /// The path's latency.
    Latency(Duration),
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Down => f.write_str("a link is down"),
            Self::Bandwidth(b) => write!(f, "only {:.1} Mbit/s spare", b / 1e6),
            Self::Latency(d) => write!(f, "latency {:.3} ms", d.as_secs_f64() * 1e3),
        }
    }
}

/// No path of the pair satisfies the intent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntentError {
    /// The pair has no path at all.
    #[error("no path between the two hosts")]
    NoPath,
    /// Every path falls short; one entry per path (label, why).
    #[error("no path satisfies the intent: {}", .0.iter().map(|(l, s)| format!("label {l}: {s}")).collect::<Vec<_>>().join("; "))]
    Unsatisfied(Vec<(u32, Shortfall)>),
}

impl Intent {
    /// Whether a path meets the intent, on current link state.
    ///
    /// # Errors
    /// The first way the path falls short.
    pub fn satisfied_by(&self, topo: &Topology, links: &[LinkId]) -> Result<(), Shortfall> {
        let mut latency = Duration::ZERO;
        let mut spare = f64::INFINITY;
        for l in links {
            let Some(s) = topo.link_state(*l).filter(|s| s.up) else {
                return Err(Shortfall::Down);
            };
            latency += s.latency;
            spare = spare.min(s.headroom_bps());
        }
        if let Some(min) = self.min_bandwidth {
            if spare < min.bps_f64() {
                return Err(Shortfall::Bandwidth(spare));
            }
        }
        if let Some(max) = self.max_latency {
            if latency > max {
                return Err(Shortfall::Latency(latency));
            }
        }
        Ok(())
    }
}

impl Routes {
    /// Weights that put the pair's traffic only on paths satisfying the
    /// intent (keeping their relative weights, evenly if they had none).
    ///
    /// # Errors
    /// [`IntentError`] when no path satisfies it, with each path's shortfall.
    pub fn plan_intent(
        &self,
        topo: &Topology,
        intent: &Intent,
    ) -> Result<WeightUpdate, IntentError> {
        let g = self
            .group(intent.src, intent.dst)
            .filter(|g| !g.paths.is_empty())
            .ok_or(IntentError::NoPath)?;
        let verdicts: Vec<Result<(), Shortfall>> = g
            .paths
            .iter()
            .map(|p| intent.satisfied_by(topo, &p.links))
            .collect();
        if verdicts.iter().all(Result::is_err) {
            return Err(IntentError::Unsatisfied(
                g.paths
                    .iter()
                    .zip(verdicts)
                    .filter_map(|(p, v)| v.err().map(|s| (p.label, s)))
                    .collect(),
            ));
        }
        let mut shares: Vec<f64> = g
            .weights
            .iter()
            .zip(&verdicts)
            .map(|(w, v)| if v.is_ok() { f64::from(*w) } else { 0.0 })
            .collect();
        if shares.iter().sum::<f64>() == 0.0 {
            shares = verdicts
                .iter()
                .map(|v| if v.is_ok() { 1.0 } else { 0.0 })
                .collect();
        }
        Ok(WeightUpdate {
            src: intent.src,
            dst: intent.dst,
            weights: quantise(&shares, self.config.total_weight),
            reason: Reason::Intent,
        })
    }
}
