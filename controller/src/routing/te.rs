//! Traffic engineering: how to split each group's demand over its paths.
//!
//! [`optimise`] minimises the worst link utilisation over the given paths,
//! with latency as a small second term:
//!
//! ```text
//!   minimise  max_e u_e  +  λ · Σ_g Σ_p x_gp · d_g · lat_p / Σ_g d_g · lat_g,min
//!   u_e = (background_e + Σ_{g,p ∋ e} x_gp · d_g) / capacity_e
//! ```
//!
//! where `x_gp` is the share of group g's demand `d_g` on path p. The max
//! is smoothed into log-sum-exp, `ln(Σ_e exp(β u_e))/β`, whose gap to
//! the max (`ln(m)/β`) starts at a tenth of the worst utilisation and is
//! halved whenever a round gains little. The problem is held in flat
//! arrays (paths as runs of link indices, each link's paths indexed back)
//! and link loads are kept up to date move by move. A round visits only
//! the groups with a path over a busy link (price within e^-12 of the
//! busiest) and, in each, moves flow from its dearest path to its
//! cheapest by a safeguarded Newton line search along that move; the
//! first round visits every group, so groups away from busy links settle
//! on their lowest-latency paths.
//!
//! Every round also yields a certified lower bound: for link prices
//! w ≥ 0, `(Σ_e w_e bg_e + Σ_g d_g min_p Σ_{e∈p} w_e) / Σ_e w_e c_e` is at
//! most the worst utilisation of any split over these paths (weak LP
//! duality). With the smoothed max's prices it closes on the optimum, and
//! the optimiser stops once its worst utilisation is within
//! [`TeConfig::tolerance`] of the best bound seen. With λ > 0 the prices
//! balance utilisation against latency, so that bound stays loose by the
//! latency the optimiser trades; the same prices with each path's latency
//! term added bound the whole objective, and the optimiser also stops
//! once the objective is within the tolerance of that bound. Shares are then rounded
//! to the granularity the devices hold (largest remainder) and single
//! steps are moved off the busiest link while that lowers it.
//!
//! [`ecmp_loads`] is the baseline routers run without a controller: equal
//! split over all equal-cost next hops towards each destination.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One group (a source–destination pair) as the optimiser sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TeGroup {
    /// Demand in bits per second.
    pub demand: f64,
    /// Each path as link indices into [`TeProblem::capacity`]. A path
    /// over a link that does not exist or has no capacity, or that lists
    /// a link twice, cannot be used; a group without paths carries
    /// nothing.
    pub paths: Vec<Vec<u32>>,
    /// Each path's latency (any unit, the same for all groups).
    pub latency: Vec<f64>,
}

/// Links and groups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TeProblem {
    /// Capacity of each link, bits per second (0, negative, infinite or
    /// NaN: unusable).
    pub capacity: Vec<f64>,
    /// Traffic already on each link that the controller does not steer
    /// (NaN and negative count as none).
    pub background: Vec<f64>,
    /// The groups.
    pub groups: Vec<TeGroup>,
}

/// Optimiser settings.
#[derive(Debug, Clone)]
pub struct TeConfig {
    /// Most rounds, at least one (each visits the groups whose paths
    /// cross busy links).
    pub iterations: usize,
    /// λ: weight of latency against utilisation (0: ignore latency).
    pub latency_weight: f64,
    /// Stop once the worst utilisation (or, with latency weighed, the
    /// whole objective) is within this fraction of its certified lower
    /// bound (0 or less: only the round limit stops it).
    pub tolerance: f64,
    /// Shares come out as multiples of `1 / granularity`, the way the
    /// devices hold them, so rounding is part of the optimisation (0:
    /// continuous shares). Set it to the weight total the devices use.
    pub granularity: u32,
}

impl Default for TeConfig {
    fn default() -> Self {
        Self {
            iterations: 300,
            latency_weight: 0.01,
            tolerance: 0.02,
            granularity: 100,
        }
    }
}

/// A link's capacity when it can carry traffic: finite and positive.
fn usable(c: f64) -> Option<f64> {
    (c.is_finite() && c > 0.0).then_some(c)
}

/// A demand as it is counted: finite and positive, else none.
fn clean_demand(d: f64) -> f64 {
    if d.is_finite() && d > 0.0 {
        d
    } else {
        0.0
    }
}

/// Background as it is counted: NaN and negative are none; an infinite
/// one stays (the link is full).
fn clean_background(b: f64) -> f64 {
    if b > 0.0 {
        b
    } else {
        0.0
    }
}

impl TeProblem {
    /// Link utilisations for the given shares.
    #[must_use]
    pub fn utilisation(&self, shares: &[Vec<f64>]) -> Vec<f64> {
        self.utilisation_and_lost(shares).0
    }

    /// The largest link utilisation for the given shares: infinite when
    /// any flow is sent over a link that does not exist.
    #[must_use]
    pub fn max_utilisation(&self, shares: &[Vec<f64>]) -> f64 {
        let (util, lost) = self.utilisation_and_lost(shares);
        if lost {
            f64::INFINITY
        } else {
            util.into_iter().fold(0.0, f64::max)
        }
    }

    /// Link utilisations, counting demands, background and capacities as
    /// the optimiser does, and whether any flow was sent over a link
    /// index outside `capacity`.
    fn utilisation_and_lost(&self, shares: &[Vec<f64>]) -> (Vec<f64>, bool) {
        let mut load: Vec<f64> = (0..self.capacity.len())
            .map(|e| clean_background(self.background.get(e).copied().unwrap_or(0.0)))
            .collect();
        let mut lost = false;
        for (g, x) in self.groups.iter().zip(shares) {
            let d = clean_demand(g.demand);
            for (p, share) in g.paths.iter().zip(x) {
                let f = if share.is_finite() && *share > 0.0 {
                    d * share
                } else {
                    0.0
                };
                if f <= 0.0 {
                    continue;
                }
                for &e in p {
                    match load.get_mut(e as usize) {
                        Some(l) => *l += f,
                        None => lost = true,
                    }
                }
            }
        }
        let util = load
            .iter()
            .zip(&self.capacity)
            .map(|(l, c)| match usable(*c) {
                Some(c) => l / c,
                None if *l > 0.0 => f64::INFINITY,
                None => 0.0,
            })
            .collect();
        (util, lost)
    }

    /// Equal shares over every path of every group.
    #[must_use]
    pub fn even_shares(&self) -> Vec<Vec<f64>> {
        self.groups
            .iter()
            .map(|g| vec![1.0 / g.paths.len().max(1) as f64; g.paths.len()])
            .collect()
    }
}

/// What [`solve`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct TeSolution {
    /// Each group's shares over its paths, in steps of
    /// `1 / granularity` when [`TeConfig::granularity`] is set.
    pub shares: Vec<Vec<f64>>,
    /// The worst link utilisation of `shares`.
    pub max_utilisation: f64,
    /// A certified lower bound: no split of the same demands over the
    /// same usable paths has a worst utilisation below this (weak LP duality
    /// with the optimiser's link prices; see the module docs).
    pub lower_bound: f64,
    /// Rounds run.
    pub rounds: usize,
}

/// Shares that minimise the worst utilisation (see the module docs),
/// starting from `start` when given (e.g. the weights in force), else
/// from each group's lowest-latency path.
// TODO-perf: about 45x faster than HiGHS on the largest benchmark
// instance (ASN2k), not 100x; small instances with little slack run to
// the round limit. See the Traffic engineering section of
// docs/benchmarks.md.
#[must_use]
pub fn optimise(p: &TeProblem, start: Option<&[Vec<f64>]>, cfg: &TeConfig) -> Vec<Vec<f64>> {
    solve(p, start, cfg).shares
}

/// [`optimise`], with the worst utilisation reached and the lower bound
/// that certifies it.
#[must_use]
pub fn solve(p: &TeProblem, start: Option<&[Vec<f64>]>, cfg: &TeConfig) -> TeSolution {
    let flat = Flat::new(p, cfg.latency_weight);
    let mut s = Solver::new(&flat, p, start);
    let mut lower_bound = 0.0f64;
    let mut objective_bound = 0.0f64;
    let mut rounds = 0;
    let mut umax = s.reprice(1.0);
    let mut best = (umax, s.flow.clone());
    let live_links = flat.inv_cap.iter().filter(|c| **c > 0.0).count().max(2);
    let ln_m = (live_links as f64).ln();
    let mut moves: Vec<u32> = Vec::new();
    let mut gap = GAP_START;
    for round in 0..cfg.iterations.max(1) {
        if !umax.is_finite() || umax <= 0.0 {
            break;
        }
        rounds = round + 1;
        umax = s.reprice(ln_m / (gap * umax));
        if umax < best.0 {
            best = (umax, s.flow.clone());
        }
        let touched = s.hot_groups();
        let (mlu_bound, obj_bound) = s.bound(&touched);
        lower_bound = lower_bound.max(mlu_bound);
        objective_bound = objective_bound.max(obj_bound);
        // Latency weighed in, the prices balance utilisation against
        // latency, and the utilisation bound alone stays loose: the
        // trade-off the optimiser makes is certified by its own bound.
        if best.0 <= (1.0 + cfg.tolerance) * lower_bound
            || umax + s.latency_term() <= (1.0 + cfg.tolerance) * objective_bound
        {
            break;
        }
        moves.clear();
        if round == 0 {
            // Every group once: groups away from busy links settle on
            // their lowest-latency paths.
            moves.extend(0..flat.demand.len() as u32);
        } else {
            moves.extend_from_slice(&touched);
        }
        for &g in &moves {
            s.balance_group(g as usize);
        }
        let before = umax;
        umax = s.max_utilisation();
        // The smoothing gap ln(m)/β, relative to the worst utilisation:
        // wide while the worst link keeps falling fast, sharper once a
        // round gains less than a fraction of the gap.
        if before - umax < GAP_PROGRESS * gap * before {
            gap = (gap * GAP_DECAY).max(GAP_END);
        }
    }
    if umax < best.0 {
        best = (umax, s.flow.clone());
    }
    s.flow = best.1;
    s.recompute_loads();
    let mut max_utilisation = best.0;
    let mut shares = s.shares(p, start, cfg.granularity);
    if cfg.granularity > 0 {
        max_utilisation = s.quantise_into(&mut shares, cfg.granularity);
    }
    if s.stranded {
        max_utilisation = f64::INFINITY;
    }
    TeSolution {
        shares,
        max_utilisation,
        lower_bound,
        rounds,
    }
}

/// The smoothing gap of the first round, relative to the worst
/// utilisation, how it shrinks each round, and its floor.
const GAP_START: f64 = 0.1;
const GAP_DECAY: f64 = 0.5;
const GAP_END: f64 = 0.02;
const GAP_PROGRESS: f64 = 0.1;
/// A link takes part in a round when its price is at least e^-HOT of the
/// busiest link's.
const HOT: f64 = 12.0;
/// Largest exponent taken, so a price never overflows.
const EXP_CAP: f64 = 300.0;

/// The problem in flat arrays: groups index paths, paths index links.
struct Flat {
    group_start: Vec<usize>,
    path_start: Vec<usize>,
    links: Vec<u32>,
    path_group: Vec<u32>,
    demand: Vec<f64>,
    /// Latency term per unit of flow on each path.
    lat: Vec<f64>,
    /// Each group's least latency term over its live paths (0 if none).
    least_lat: Vec<f64>,
    /// Σ_g demand_g · least_lat_g: the latency term no split avoids.
    lat_floor: f64,
    /// Every link of the path exists and has capacity.
    live: Vec<bool>,
    /// 1/capacity, 0 for a link without capacity.
    inv_cap: Vec<f64>,
    background: Vec<f64>,
    /// The live paths over each link.
    link_start: Vec<usize>,
    link_paths: Vec<u32>,
}

impl Flat {
    fn new(p: &TeProblem, latency_weight: f64) -> Self {
        let m = p.capacity.len();
        let inv_cap: Vec<f64> = p
            .capacity
            .iter()
            .map(|c| usable(*c).map_or(0.0, |c| 1.0 / c))
            .collect();
        let background: Vec<f64> = (0..m)
            .map(|e| clean_background(p.background.get(e).copied().unwrap_or(0.0)))
            .collect();
        // Stamps for finding a link listed twice in one path.
        let mut seen = vec![0u32; m];
        let mut stamp = 0u32;
        let lat_ref: f64 = p
            .groups
            .iter()
            .map(|g| {
                clean_demand(g.demand)
                    * g.latency
                        .iter()
                        .copied()
                        .fold(f64::INFINITY, f64::min)
                        .max(1e-12)
            })
            .filter(|v| v.is_finite() && *v > 0.0)
            .sum::<f64>()
            .max(1e-12);
        let npaths: usize = p.groups.iter().map(|g| g.paths.len()).sum();
        let mut f = Flat {
            group_start: Vec::with_capacity(p.groups.len() + 1),
            path_start: Vec::with_capacity(npaths + 1),
            links: Vec::new(),
            path_group: Vec::with_capacity(npaths),
            demand: Vec::with_capacity(p.groups.len()),
            lat: Vec::with_capacity(npaths),
            least_lat: Vec::with_capacity(p.groups.len()),
            lat_floor: 0.0,
            live: Vec::with_capacity(npaths),
            inv_cap,
            background,
            link_start: vec![0; m + 1],
            link_paths: Vec::new(),
        };
        for (gi, g) in p.groups.iter().enumerate() {
            f.group_start.push(f.path_start.len());
            f.demand.push(clean_demand(g.demand));
            for (pi, path) in g.paths.iter().enumerate() {
                f.path_start.push(f.links.len());
                f.path_group.push(gi as u32);
                let l = g.latency.get(pi).copied().unwrap_or(0.0);
                let l = if l.is_finite() { l.max(0.0) } else { 0.0 };
                f.lat.push(latency_weight.max(0.0) * l / lat_ref);
                stamp += 1;
                let live = path.iter().all(|&e| {
                    let ok = f.inv_cap.get(e as usize).is_some_and(|c| *c > 0.0)
                        && seen[e as usize] != stamp;
                    if ok {
                        seen[e as usize] = stamp;
                    }
                    ok
                });
                f.live.push(live);
                f.links.extend_from_slice(path);
                if live {
                    for &e in path {
                        f.link_start[e as usize] += 1;
                    }
                }
            }
        }
        f.group_start.push(f.path_start.len());
        f.path_start.push(f.links.len());
        for g in 0..f.demand.len() {
            let least = f
                .paths(g)
                .filter(|&q| f.live[q])
                .map(|q| f.lat[q])
                .fold(f64::INFINITY, f64::min);
            let least = if least.is_finite() { least } else { 0.0 };
            f.least_lat.push(least);
            f.lat_floor += f.demand[g] * least;
        }
        // Counts to offsets, then fill.
        let mut sum = 0;
        for c in &mut f.link_start {
            let n = *c;
            *c = sum;
            sum += n;
        }
        f.link_paths = vec![0; sum];
        let mut next = f.link_start.clone();
        for path in 0..f.live.len() {
            if f.live[path] {
                for &e in &f.links[f.path_start[path]..f.path_start[path + 1]] {
                    f.link_paths[next[e as usize]] = path as u32;
                    next[e as usize] += 1;
                }
            }
        }
        f
    }

    fn paths(&self, g: usize) -> std::ops::Range<usize> {
        self.group_start[g]..self.group_start[g + 1]
    }

    fn path(&self, p: usize) -> &[u32] {
        &self.links[self.path_start[p]..self.path_start[p + 1]]
    }
}

/// Flows, link loads and link prices while optimising.
struct Solver<'a> {
    f: &'a Flat,
    /// Flow on each path (bit/s).
    flow: Vec<f64>,
    load: Vec<f64>,
    /// Price of each link: exp(β (u_e - r)), 0 without capacity.
    y: Vec<f64>,
    /// Sum of the prices.
    psi: f64,
    beta: f64,
    r: f64,
    /// Some group with demand has no usable path.
    stranded: bool,
    mark: Vec<u32>,
    stamp: u32,
    group_mark: Vec<u32>,
    group_stamp: u32,
    a: Vec<u32>,
    b: Vec<u32>,
}

impl<'a> Solver<'a> {
    fn new(f: &'a Flat, p: &TeProblem, start: Option<&[Vec<f64>]>) -> Self {
        let start = start.filter(|s| s.len() == p.groups.len());
        let mut flow = vec![0.0; f.live.len()];
        let mut stranded = false;
        for g in 0..f.demand.len() {
            let d = f.demand[g];
            let paths = f.paths(g);
            if d <= 0.0 || paths.is_empty() {
                continue;
            }
            let Some(low) = paths
                .clone()
                .filter(|&q| f.live[q])
                .min_by(|a, b| f.lat[*a].total_cmp(&f.lat[*b]).then(a.cmp(b)))
            else {
                stranded = true;
                continue;
            };
            let from = start.map(|s| &s[g]);
            let weight = |q: usize| -> f64 {
                let v = from
                    .and_then(|s| s.get(q - paths.start))
                    .copied()
                    .unwrap_or(0.0);
                if f.live[q] && v.is_finite() && v > 0.0 {
                    v
                } else {
                    0.0
                }
            };
            // Scaled by the largest first, so huge weights cannot overflow
            // the sum.
            let top = paths.clone().map(weight).fold(0.0, f64::max);
            let sum: f64 = paths.clone().map(|q| weight(q) / top).sum();
            if top > 0.0 && sum > 0.0 {
                for q in paths.clone() {
                    flow[q] = d * (weight(q) / top) / sum;
                }
            } else {
                flow[low] = d;
            }
        }
        if start.is_none() {
            // Whole groups, the largest first, each on the path whose
            // busiest link stays least busy.
            let mut load = f.background.clone();
            let mut order: Vec<usize> = (0..f.demand.len()).collect();
            order.sort_by(|a, b| f.demand[*b].total_cmp(&f.demand[*a]).then(a.cmp(b)));
            for g in order {
                let d = f.demand[g];
                let mut pick: Option<(f64, usize)> = None;
                for q in f.paths(g).filter(|&q| f.live[q]) {
                    let peak = f
                        .path(q)
                        .iter()
                        .map(|&e| (load[e as usize] + d) * f.inv_cap[e as usize])
                        .fold(0.0, f64::max);
                    if pick.is_none_or(|(b, _)| peak < b) {
                        pick = Some((peak, q));
                    }
                }
                if let (Some((_, q)), true) = (pick, d > 0.0) {
                    for x in &mut flow[f.paths(g)] {
                        *x = 0.0;
                    }
                    flow[q] = d;
                    for &e in f.path(q) {
                        load[e as usize] += d;
                    }
                }
            }
        }
        let m = f.inv_cap.len();
        let mut s = Solver {
            f,
            flow,
            load: Vec::new(),
            y: vec![0.0; m],
            psi: 1.0,
            beta: 1.0,
            r: 0.0,
            stranded,
            mark: vec![0; m],
            stamp: 0,
            group_mark: vec![0; f.demand.len()],
            group_stamp: 0,
            a: Vec::new(),
            b: Vec::new(),
        };
        s.recompute_loads();
        s
    }

    fn recompute_loads(&mut self) {
        self.load.clone_from(&self.f.background);
        for (q, &x) in self.flow.iter().enumerate() {
            if x != 0.0 {
                for &e in self.f.path(q) {
                    self.load[e as usize] += x;
                }
            }
        }
    }

    fn max_utilisation(&self) -> f64 {
        self.load
            .iter()
            .zip(&self.f.inv_cap)
            .map(|(l, c)| l * c)
            .fold(0.0, f64::max)
    }

    /// Sets β, takes the worst utilisation as the reference and prices
    /// every link. Returns the worst utilisation.
    fn reprice(&mut self, beta: f64) -> f64 {
        let umax = self.max_utilisation();
        self.beta = beta;
        self.r = umax;
        self.psi = 0.0;
        for e in 0..self.y.len() {
            let c = self.f.inv_cap[e];
            self.y[e] = if c > 0.0 {
                (self.beta * (self.load[e] * c - self.r)).min(EXP_CAP).exp()
            } else {
                0.0
            };
            self.psi += self.y[e];
        }
        umax
    }

    fn price(&mut self, e: usize) {
        let c = self.f.inv_cap[e];
        let y = (self.beta * (self.load[e] * c - self.r)).min(EXP_CAP).exp();
        self.psi += y - self.y[e];
        self.y[e] = y;
    }

    /// The groups with demand and a live path over a hot link, in order.
    fn hot_groups(&mut self) -> Vec<u32> {
        let thr = (-HOT).exp();
        self.group_stamp += 1;
        let mut out = Vec::new();
        for e in 0..self.y.len() {
            if self.y[e] < thr {
                continue;
            }
            for &q in &self.f.link_paths[self.f.link_start[e]..self.f.link_start[e + 1]] {
                let g = self.f.path_group[q as usize];
                if self.group_mark[g as usize] != self.group_stamp
                    && self.f.demand[g as usize] > 0.0
                {
                    self.group_mark[g as usize] = self.group_stamp;
                    out.push(g);
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The lower bounds from the current prices (those below the hot
    /// threshold taken as 0). Any prices w ≥ 0 give, for the worst
    /// utilisation, (Σ_e w_e bg_e + Σ_g d_g min_p Σ_{e∈p} w_e) / Σ_e w_e c_e
    /// with w_e = y_e / c_e; and for the worst utilisation plus the
    /// latency term, the same with each path's latency term added inside
    /// the minimum (prices normalised to sum to 1). `touched` are the
    /// groups over hot links; the others add only their least latency.
    fn bound(&self, touched: &[u32]) -> (f64, f64) {
        let thr = (-HOT).exp();
        let f = self.f;
        let w = |e: usize| if self.y[e] >= thr { self.y[e] } else { 0.0 };
        let mut num = 0.0;
        let mut den = 0.0;
        for e in 0..self.y.len() {
            let we = w(e);
            if we > 0.0 {
                den += we;
                num += we * f.background[e] * f.inv_cap[e];
            }
        }
        let base = num;
        let mut with_latency = 0.0;
        for &g in touched {
            let g = g as usize;
            let (mut cheapest, mut cheapest_lat) = (f64::INFINITY, f64::INFINITY);
            for q in f.paths(g).filter(|&q| f.live[q]) {
                let c = f
                    .path(q)
                    .iter()
                    .map(|&e| w(e as usize) * f.inv_cap[e as usize])
                    .sum::<f64>();
                cheapest = cheapest.min(c);
                if den > 0.0 {
                    cheapest_lat = cheapest_lat.min(c / den + f.lat[q]);
                }
            }
            if cheapest.is_finite() {
                num += f.demand[g] * cheapest;
            }
            if cheapest_lat.is_finite() {
                with_latency += f.demand[g] * (cheapest_lat - f.least_lat[g]);
            }
        }
        if den > 0.0 {
            (num / den, base / den + f.lat_floor + with_latency)
        } else {
            (0.0, f.lat_floor)
        }
    }

    /// Σ_p flow_p · latency term_p: what the latency adds to the objective.
    fn latency_term(&self) -> f64 {
        self.flow.iter().zip(&self.f.lat).map(|(x, l)| x * l).sum()
    }

    fn cost(&self, q: usize) -> f64 {
        let mut s = 0.0;
        for &e in self.f.path(q) {
            s += self.y[e as usize] * self.f.inv_cap[e as usize];
        }
        s / self.psi + self.f.lat[q]
    }

    /// Moves the group's flow towards its cheapest path: from the
    /// dearest path that carries flow, by a line search, a few times.
    fn balance_group(&mut self, g: usize) {
        let f = self.f;
        let paths = f.paths(g);
        if paths.len() < 2 {
            return;
        }
        for _ in 0..paths.len() {
            let (mut lo, mut lo_c) = (usize::MAX, f64::INFINITY);
            let (mut hi, mut hi_c) = (usize::MAX, f64::NEG_INFINITY);
            for q in paths.clone() {
                if !f.live[q] {
                    continue;
                }
                let c = self.cost(q);
                if c < lo_c {
                    (lo, lo_c) = (q, c);
                }
                if self.flow[q] > 0.0 && c > hi_c {
                    (hi, hi_c) = (q, c);
                }
            }
            if hi == usize::MAX
                || hi == lo
                || (hi_c - lo_c).is_nan()
                || hi_c - lo_c <= 1e-2 * hi_c.abs()
            {
                return;
            }
            self.shift(hi, lo);
        }
    }

    /// Moves flow from path `p` to path `q` of the same group, to about
    /// the minimum of the smoothed objective along that direction.
    fn shift(&mut self, p: usize, q: usize) {
        let f = self.f;
        self.stamp = self.stamp.wrapping_add(2);
        for &e in f.path(q) {
            self.mark[e as usize] = self.stamp;
        }
        self.a.clear();
        for &e in f.path(p) {
            if self.mark[e as usize] != self.stamp {
                self.a.push(e);
            }
        }
        for &e in f.path(p) {
            self.mark[e as usize] = self.stamp.wrapping_add(1);
        }
        self.b.clear();
        for &e in f.path(q) {
            if self.mark[e as usize] != self.stamp.wrapping_add(1) {
                self.b.push(e);
            }
        }
        let dlat = f.lat[q] - f.lat[p];
        let (beta, r) = (self.beta, self.r);
        // The objective along the move is ln(Ψ(δ))/β + δ·dlat, Ψ the sum
        // of prices; its slope has the sign of h(δ) = N(δ) + dlat·Ψ(δ),
        // N = Σ_B y_e/c_e - Σ_A y_e/c_e. Newton on h, kept in a bracket.
        // Prices come from the loads, not scaled from the current ones: a
        // price that has underflowed to 0 must still grow.
        let eval = |s: &Self, delta: f64| -> (f64, f64) {
            let (mut psi, mut n, mut s2) = (s.psi, 0.0, 0.0);
            for &e in &s.a {
                let (c, y0) = (f.inv_cap[e as usize], s.y[e as usize]);
                let y = (beta * ((s.load[e as usize] - delta) * c - r))
                    .min(EXP_CAP)
                    .exp();
                psi += y - y0;
                n -= y * c;
                s2 += y * c * c;
            }
            for &e in &s.b {
                let (c, y0) = (f.inv_cap[e as usize], s.y[e as usize]);
                let y = (beta * ((s.load[e as usize] + delta) * c - r))
                    .min(EXP_CAP)
                    .exp();
                psi += y - y0;
                n += y * c;
                s2 += y * c * c;
            }
            (n + dlat * psi, beta * (s2 + dlat * n))
        };
        let total = self.flow[p];
        let (mut lo, mut hi) = (0.0, total);
        let (h0, mut dh) = eval(self, 0.0);
        if h0 >= 0.0 || h0.is_nan() {
            return;
        }
        let (mut x, mut h) = (0.0, h0);
        for _ in 0..12 {
            let mut next = if dh > 0.0 { x - h / dh } else { hi };
            if next.is_nan() || next >= hi {
                next = if x == lo && h < 0.0 && hi == total && x < total {
                    hi
                } else {
                    0.5 * (lo + hi)
                };
            }
            if next <= lo {
                next = 0.5 * (lo + hi);
            }
            x = next;
            (h, dh) = eval(self, x);
            if h <= 0.0 {
                lo = x;
                if x >= total {
                    break;
                }
            } else {
                hi = x;
            }
            if h.abs() <= 0.1 * h0.abs() || hi - lo <= 1e-9 * total {
                break;
            }
        }
        let step = if h <= 0.0 || h.abs() <= 0.1 * h0.abs() {
            x
        } else {
            lo
        };
        if step.is_nan() || step <= 0.0 {
            return;
        }
        self.flow[p] = if step >= total { 0.0 } else { total - step };
        self.flow[q] += step;
        for i in 0..self.a.len() {
            let e = self.a[i] as usize;
            self.load[e] -= step;
            self.price(e);
        }
        for i in 0..self.b.len() {
            let e = self.b[i] as usize;
            self.load[e] += step;
            self.price(e);
        }
    }

    /// Each group's shares: its flows over its demand; groups the
    /// optimiser did not place keep `start` (else even shares), in steps
    /// of `1 / total` unless `total` is 0.
    fn shares(&self, p: &TeProblem, start: Option<&[Vec<f64>]>, total: u32) -> Vec<Vec<f64>> {
        let start = start.filter(|s| s.len() == p.groups.len());
        (0..p.groups.len())
            .map(|g| {
                let paths = self.f.paths(g);
                let d = self.f.demand[g];
                if d > 0.0 && paths.clone().any(|q| self.f.live[q]) {
                    return paths.map(|q| self.flow[q] / d).collect();
                }
                // Not placed (no demand or no usable path): the start
                // weights, else even shares.
                let n = paths.len();
                let mut v: Vec<f64> = start.map(|s| s[g].clone()).unwrap_or_default();
                v.resize(n, 0.0);
                let valid = |x: &f64| x.is_finite() && *x > 0.0;
                let top = v.iter().copied().filter(valid).fold(0.0, f64::max);
                let mut v: Vec<f64> = if top > 0.0 {
                    v.iter()
                        .map(|x| if valid(x) { x / top } else { 0.0 })
                        .collect()
                } else {
                    vec![1.0; n]
                };
                if total > 0 {
                    let unit = 1.0 / f64::from(total);
                    v = quantise(&v, total)
                        .into_iter()
                        .map(|w| f64::from(w) * unit)
                        .collect();
                } else {
                    let sum: f64 = v.iter().sum();
                    v.iter_mut().for_each(|x| *x /= sum);
                }
                v
            })
            .collect()
    }

    /// Rounds every placed group's shares to multiples of `1/total`
    /// (largest remainder), then moves single steps off the busiest link
    /// while that lowers it without making another link as busy. Returns
    /// the worst utilisation reached.
    fn quantise_into(&mut self, shares: &mut [Vec<f64>], total: u32) -> f64 {
        let f = self.f;
        let unit = 1.0 / f64::from(total);
        let mut steps = vec![0u32; f.live.len()];
        for (g, x) in shares.iter_mut().enumerate() {
            let d = f.demand[g];
            let paths = f.paths(g);
            if !(d > 0.0 && paths.clone().any(|q| f.live[q])) {
                continue;
            }
            for (q, w) in paths.clone().zip(quantise(x, total)) {
                steps[q] = w;
                self.flow[q] = d * f64::from(w) * unit;
            }
        }
        self.recompute_loads();
        let util = |s: &Self, e: usize| s.load[e] * f.inv_cap[e];
        // The busiest link, from a max-heap of (utilisation, link) whose
        // entries go stale when a move changes the link's load: an entry
        // counts only while it still holds the link's utilisation. For
        // utilisations ≥ 0 the bit patterns order as the values do.
        let key = |u: f64| u.max(0.0).to_bits();
        let mut heap: BinaryHeap<(u64, u32)> = (0..self.load.len())
            .filter(|&e| f.inv_cap[e] > 0.0)
            .map(|e| (key(util(self, e)), e as u32))
            .collect();
        let mut moves = 0;
        // Single steps repair rounding; past a fine granularity more of
        // them buy nothing, so their number is bounded.
        let limit = 50 * (total as usize).min(1000) + 10 * f.demand.len();
        while moves < limit {
            let mut busiest = None;
            while let Some(&(k, e)) = heap.peek() {
                if k == key(util(self, e as usize)) {
                    busiest = Some(e as usize);
                    break;
                }
                heap.pop();
            }
            let Some(top) = busiest else {
                break;
            };
            let umax = util(self, top);
            if umax <= 0.0 {
                break;
            }
            // The single step off `top` that leaves the lowest peak.
            let mut pick: Option<(f64, usize, usize)> = None;
            for &q in &f.link_paths[f.link_start[top]..f.link_start[top + 1]] {
                let q = q as usize;
                if steps[q] == 0 {
                    continue;
                }
                let g = f.path_group[q] as usize;
                let step = f.demand[g] * unit;
                self.stamp = self.stamp.wrapping_add(1);
                for &e in f.path(q) {
                    self.mark[e as usize] = self.stamp;
                }
                for o in f.paths(g) {
                    if o == q || !f.live[o] || f.path(o).contains(&(top as u32)) {
                        continue;
                    }
                    let peak = f
                        .path(o)
                        .iter()
                        .filter(|&&e| self.mark[e as usize] != self.stamp)
                        .map(|&e| (self.load[e as usize] + step) * f.inv_cap[e as usize])
                        .fold(0.0, f64::max);
                    if peak < umax && pick.is_none_or(|(b, _, _)| peak < b) {
                        pick = Some((peak, q, o));
                    }
                }
            }
            let Some((_, from, to)) = pick else {
                break;
            };
            let g = f.path_group[from] as usize;
            let step = f.demand[g] * unit;
            steps[from] -= 1;
            steps[to] += 1;
            for &e in f.path(from) {
                self.load[e as usize] -= step;
            }
            for &e in f.path(to) {
                self.load[e as usize] += step;
            }
            for &e in f.path(from).iter().chain(f.path(to)) {
                heap.push((key(util(self, e as usize)), e));
            }
            moves += 1;
        }
        for (g, x) in shares.iter_mut().enumerate() {
            let paths = f.paths(g);
            if f.demand[g] > 0.0 && paths.clone().any(|q| f.live[q]) {
                for (v, q) in x.iter_mut().zip(paths) {
                    *v = f64::from(steps[q]) * unit;
                }
            }
        }
        self.max_utilisation()
    }
}

/// Each group on one path, when that is nearly as good as splitting.
///
/// A group split over several paths spreads its flows over them at
/// random, flowlet by flowlet, so a group of one or two elephant flows
/// lands wherever the draw puts it. This puts every group on a single
/// path instead, greedily, the largest demand first: each group takes the
/// path whose busiest link stays least loaded once the group is on it,
/// keeping the path that carries most of its traffic now (`current`)
/// unless another is better by more than `slack`. The result is returned
/// when its worst utilisation is within `slack` of `target`'s (the
/// optimiser's shares), else `None`.
#[must_use]
pub fn consolidate(
    p: &TeProblem,
    current: &[Vec<f64>],
    target: &[Vec<f64>],
    slack: f64,
) -> Option<Vec<Vec<f64>>> {
    let out = whole_groups(p, current, slack);
    (p.max_utilisation(&out) <= p.max_utilisation(target) + slack).then_some(out)
}

/// The greedy single-path assignment of [`consolidate`], whatever it
/// reaches.
#[must_use]
pub fn whole_groups(p: &TeProblem, current: &[Vec<f64>], slack: f64) -> Vec<Vec<f64>> {
    let mut load: Vec<f64> = (0..p.capacity.len())
        .map(|e| clean_background(p.background.get(e).copied().unwrap_or(0.0)))
        .collect();
    let demand = |g: usize| clean_demand(p.groups[g].demand);
    let mut order: Vec<usize> = (0..p.groups.len()).collect();
    order.sort_by(|a, b| demand(*b).total_cmp(&demand(*a)).then(a.cmp(b)));
    let mut out: Vec<Vec<f64>> = p.groups.iter().map(|g| vec![0.0; g.paths.len()]).collect();
    for gi in order {
        let g = &p.groups[gi];
        let d = demand(gi);
        if g.paths.is_empty() {
            continue;
        }
        // The busiest link of each path with the group on it.
        let peak = |path: &[u32]| {
            path.iter()
                .map(|&e| {
                    let c = p.capacity.get(e as usize).copied().and_then(usable);
                    let l = load.get(e as usize).copied().unwrap_or(0.0) + d;
                    c.map_or(f64::INFINITY, |c| l / c)
                })
                .fold(0.0, f64::max)
        };
        let peaks: Vec<f64> = g.paths.iter().map(|path| peak(path)).collect();
        let best = (0..peaks.len())
            .min_by(|a, b| peaks[*a].total_cmp(&peaks[*b]).then(a.cmp(b)))
            .unwrap_or(0);
        let now = current.get(gi).and_then(|c| {
            (0..c.len())
                .filter(|&i| i < peaks.len())
                .max_by(|a, b| c[*a].total_cmp(&c[*b]).then(b.cmp(a)))
        });
        let pick = match now {
            Some(i) if peaks[i] <= peaks[best] + slack => i,
            _ => best,
        };
        out[gi][pick] = 1.0;
        for &e in &g.paths[pick] {
            if let Some(l) = load.get_mut(e as usize) {
                *l += d;
            }
        }
    }
    out
}

/// Integer weights summing to `total` that best approximate `shares`
/// (largest remainder). A share that is positive but rounds to nothing
/// gets nothing: it is below what the group can express.
#[must_use]
pub fn quantise(shares: &[f64], total: u32) -> Vec<u32> {
    let valid = |s: &f64| s.is_finite() && *s > 0.0;
    // Scaled by the largest first, so huge shares cannot overflow the sum.
    let top = shares.iter().copied().filter(valid).fold(0.0, f64::max);
    let sum: f64 = shares.iter().filter(|s| valid(s)).map(|s| s / top).sum();
    if shares.is_empty() || top <= 0.0 || sum <= 0.0 {
        return vec![0; shares.len()];
    }
    let exact: Vec<f64> = shares
        .iter()
        .map(|s| {
            if valid(s) {
                (s / top) / sum * f64::from(total)
            } else {
                0.0
            }
        })
        .collect();
    let mut out: Vec<u32> = exact.iter().map(|e| e.floor() as u32).collect();
    let floor_sum = out.iter().fold(0u32, |a, b| a.saturating_add(*b));
    let mut left = total.saturating_sub(floor_sum);
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| {
        let (ra, rb) = (exact[*a] - exact[*a].floor(), exact[*b] - exact[*b].floor());
        rb.total_cmp(&ra).then(a.cmp(b))
    });
    for i in order {
        if left == 0 {
            break;
        }
        if exact[i] > 0.0 {
            out[i] += 1;
            left -= 1;
        }
    }
    out
}

/// Link loads of plain ECMP: every demand follows all shortest paths to
/// its destination (by `cost`), split equally at each hop among the
/// next hops that stay on a shortest path.
///
/// `arcs` are `(from, to, cost)` over nodes `0..nodes`; demands are
/// `(src, dst, rate)`. Returns the load of each arc.
#[must_use]
pub fn ecmp_loads(nodes: usize, arcs: &[(u32, u32, u64)], demands: &[(u32, u32, f64)]) -> Vec<f64> {
    let mut into: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    let mut out_of: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    let exists = |v: u32| (v as usize) < nodes;
    for (i, a) in arcs.iter().enumerate() {
        // Arcs and demands naming a node outside `nodes` are left out.
        if exists(a.0) && exists(a.1) {
            into[a.1 as usize].push(i);
            out_of[a.0 as usize].push(i);
        }
    }
    let mut by_dst: Vec<Vec<(u32, f64)>> = vec![Vec::new(); nodes];
    for &(s, t, r) in demands {
        if s != t && r.is_finite() && r > 0.0 && exists(s) && exists(t) {
            by_dst[t as usize].push((s, r));
        }
    }
    let mut load = vec![0.0; arcs.len()];
    let mut dist = vec![u64::MAX; nodes];
    let mut inflow = vec![0.0; nodes];
    let mut heap = BinaryHeap::new();
    for t in 0..nodes {
        if by_dst[t].is_empty() {
            continue;
        }
        dist.fill(u64::MAX);
        dist[t] = 0;
        heap.push(Reverse((0u64, t)));
        let mut order = Vec::new();
        while let Some(Reverse((d, v))) = heap.pop() {
            if d > dist[v] {
                continue;
            }
            order.push(v);
            for &a in &into[v] {
                let u = arcs[a].0 as usize;
                let nd = d.saturating_add(arcs[a].2);
                if nd < dist[u] {
                    dist[u] = nd;
                    heap.push(Reverse((nd, u)));
                }
            }
        }
        inflow.fill(0.0);
        for &(s, r) in &by_dst[t] {
            inflow[s as usize] += r;
        }
        // Farthest first: a node's traffic is complete when it is visited.
        for &v in order.iter().rev() {
            if v == t || inflow[v] == 0.0 {
                continue;
            }
            let next: Vec<usize> = out_of[v]
                .iter()
                .copied()
                .filter(|&a| {
                    let h = arcs[a].1 as usize;
                    dist[h] != u64::MAX && dist[h].saturating_add(arcs[a].2) == dist[v]
                })
                .collect();
            let share = inflow[v] / next.len().max(1) as f64;
            for a in next {
                load[a] += share;
                inflow[arcs[a].1 as usize] += share;
            }
            inflow[v] = 0.0;
        }
    }
    load
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two groups of one elephant each over two parallel links of 100.
    fn two_elephants(demand: f64) -> TeProblem {
        let g = TeGroup {
            demand,
            paths: vec![vec![0], vec![1]],
            latency: vec![1.0, 1.0],
        };
        TeProblem {
            capacity: vec![100.0, 100.0],
            background: vec![0.0, 0.0],
            groups: vec![g.clone(), g],
        }
    }

    #[test]
    fn colliding_elephants_are_separated_not_split() {
        let p = two_elephants(50.0);
        let current = vec![vec![1.0, 0.0], vec![1.0, 0.0]];
        let target = optimise(&p, Some(&current), &TeConfig::default());
        assert!(p.max_utilisation(&target) < 0.55, "{target:?}");
        let whole = consolidate(&p, &current, &target, 0.025).expect("as good unsplit");
        // The first group keeps its link, the second moves whole.
        assert_eq!(whole, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert!((p.max_utilisation(&whole) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_split_that_is_clearly_better_stays_split() {
        // One group of 150 over two links of 100: whole, one link is at
        // 150 %; split, both at 75 %.
        let p = TeProblem {
            capacity: vec![100.0, 100.0],
            background: vec![0.0, 0.0],
            groups: vec![TeGroup {
                demand: 150.0,
                paths: vec![vec![0], vec![1]],
                latency: vec![1.0, 1.0],
            }],
        };
        let current = vec![vec![1.0, 0.0]];
        let target = optimise(&p, Some(&current), &TeConfig::default());
        assert!(consolidate(&p, &current, &target, 0.025).is_none());
    }

    #[test]
    fn quantised_weights_sum_to_the_total() {
        assert_eq!(quantise(&[1.0, 1.0, 1.0], 100), vec![34, 33, 33]);
        assert_eq!(quantise(&[0.0, 1.0], 100), vec![0, 100]);
        assert_eq!(quantise(&[0.7, 0.2, 0.1], 10), vec![7, 2, 1]);
        assert_eq!(quantise(&[0.0, 0.0], 100), vec![0, 0]);
        assert_eq!(quantise(&[f64::NAN, 2.0], 64), vec![0, 64]);
    }

    /// Two groups share a link; each has a private alternative. The best
    /// split puts each group's excess on its private path.
    #[test]
    fn optimiser_finds_the_balanced_split() {
        // links: 0 shared (cap 10), 1 private to g0 (cap 10), 2 private to g1 (cap 10)
        let p = TeProblem {
            capacity: vec![10.0, 10.0, 10.0],
            background: vec![0.0; 3],
            groups: vec![
                TeGroup {
                    demand: 10.0,
                    paths: vec![vec![0], vec![1]],
                    latency: vec![1.0, 1.0],
                },
                TeGroup {
                    demand: 10.0,
                    paths: vec![vec![0], vec![2]],
                    latency: vec![1.0, 1.0],
                },
            ],
        };
        let x = optimise(&p, None, &TeConfig::default());
        let u = p.max_utilisation(&x);
        // Optimum: 2/3 of each group on its private path, MLU 2/3.
        assert!((u - 2.0 / 3.0).abs() < 0.01, "{u} {x:?}");
    }

    #[test]
    fn ecmp_splits_over_equal_cost_next_hops() {
        // 0 -> {1, 2} -> 3, all cost 1; 0 -> 3 direct cost 5.
        let arcs = [(0, 1, 1), (0, 2, 1), (1, 3, 1), (2, 3, 1), (0, 3, 5)];
        let load = ecmp_loads(4, &arcs, &[(0, 3, 8.0)]);
        assert_eq!(load, vec![4.0, 4.0, 4.0, 4.0, 0.0]);
    }
}
