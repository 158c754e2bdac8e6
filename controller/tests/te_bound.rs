//! Traffic engineering on random instances: the lower bound the optimiser
//! reports is a real bound (never above the worst utilisation of any
//! split, nor above the LP optimum when HiGHS is built in), and the split
//! it returns is within its tolerance of that bound.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use proptest::prelude::*;
use solyx::routing::te::{quantise, solve, whole_groups, TeConfig, TeGroup, TeProblem};

/// A random instance: `links` links of capacity 1–10, groups with 1–4
/// paths of 1–4 random links each.
fn instance() -> impl Strategy<Value = TeProblem> {
    (2usize..12).prop_flat_map(|links| {
        let group = (
            0.1f64..5.0,
            prop::collection::vec(prop::collection::vec(0..links as u32, 1..5), 1..5),
        )
            .prop_map(|(demand, mut paths)| {
                for p in &mut paths {
                    p.sort_unstable();
                    p.dedup();
                }
                TeGroup {
                    demand,
                    latency: paths.iter().map(|p| p.len() as f64).collect(),
                    paths,
                }
            });
        (
            prop::collection::vec(1.0f64..10.0, links),
            prop::collection::vec(0.0f64..2.0, links),
            prop::collection::vec(group, 1..10),
        )
            .prop_map(|(capacity, background, groups)| TeProblem {
                capacity,
                background,
                groups,
            })
    })
}

fn continuous() -> TeConfig {
    TeConfig {
        granularity: 0,
        ..TeConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn bound_is_below_every_split(p in instance(), seed in prop::collection::vec(0.0f64..1.0, 64)) {
        let cfg = continuous();
        let s = solve(&p, None, &cfg);
        let mlu = p.max_utilisation(&s.shares);
        prop_assert!((s.max_utilisation - mlu).abs() <= 1e-9 * mlu.max(1.0));
        // Our own split, even shares, whole groups and random shares.
        let mut k = 0;
        let random: Vec<Vec<f64>> = p
            .groups
            .iter()
            .map(|g| {
                let v: Vec<f64> = g.paths.iter().map(|_| { k += 1; seed[k % 64] + 1e-3 }).collect();
                let sum: f64 = v.iter().sum();
                v.iter().map(|x| x / sum).collect()
            })
            .collect();
        let whole = whole_groups(&p, &p.even_shares(), 0.0);
        for x in [&s.shares, &p.even_shares(), &whole, &random] {
            prop_assert!(s.lower_bound <= p.max_utilisation(x) * (1.0 + 1e-9),
                "bound {} above {}", s.lower_bound, p.max_utilisation(x));
        }
        // Small instances converge well before the round limit: with
        // latency weighed, the objective meets its own bound...
        prop_assert!(s.rounds < cfg.iterations, "no certificate after {} rounds", s.rounds);
        // ...and on utilisation alone the split is within the tolerance
        // of the utilisation bound.
        let pure = TeConfig { latency_weight: 0.0, ..cfg.clone() };
        let u = solve(&p, None, &pure);
        let umlu = p.max_utilisation(&u.shares);
        prop_assert!(umlu <= u.lower_bound * (1.0 + pure.tolerance) + 1e-9,
            "mlu {umlu} bound {} after {} rounds", u.lower_bound, u.rounds);
        prop_assert!(u.lower_bound <= mlu * (1.0 + 1e-9));
    }

    #[test]
    fn quantised_shares_are_whole_steps(p in instance()) {
        let s = solve(&p, None, &TeConfig::default());
        for (x, g) in s.shares.iter().zip(&p.groups) {
            prop_assert_eq!(x.len(), g.paths.len());
            let steps: Vec<f64> = x.iter().map(|v| v * 100.0).collect();
            prop_assert!(steps.iter().all(|v| (v - v.round()).abs() < 1e-9), "{:?}", x);
            prop_assert!((steps.iter().sum::<f64>() - 100.0).abs() < 1e-6, "{:?}", x);
        }
        let mlu = p.max_utilisation(&s.shares);
        prop_assert!((s.max_utilisation - mlu).abs() <= 1e-9 * mlu.max(1.0));
        prop_assert!(s.lower_bound <= mlu * (1.0 + 1e-9));
    }
}

#[cfg(feature = "lp")]
mod lp {
    use super::*;
    use highs::{ColProblem, HighsModelStatus, Sense};
    use std::collections::HashMap;

    /// The optimum worst utilisation over the same paths (HiGHS).
    fn optimum(p: &TeProblem) -> f64 {
        let mut pb = ColProblem::new();
        let mut rows = HashMap::new();
        for (e, c) in p.capacity.iter().enumerate() {
            rows.insert(e, pb.add_row(..=-p.background[e] / c));
        }
        let groups: Vec<_> = p.groups.iter().map(|_| pb.add_row(1.0..=1.0)).collect();
        for (g, row) in p.groups.iter().zip(&groups) {
            for path in &g.paths {
                let mut coef: Vec<(highs::Row, f64)> = path
                    .iter()
                    .map(|&e| (rows[&(e as usize)], g.demand / p.capacity[e as usize]))
                    .collect();
                coef.push((*row, 1.0));
                pb.add_column(0.0, 0.0..=1.0, coef);
            }
        }
        let all: Vec<(highs::Row, f64)> = rows.values().map(|r| (*r, -1.0)).collect();
        pb.add_column(1.0, 0.0.., all);
        let mut model = pb.optimise(Sense::Minimise);
        model.make_quiet();
        let solved = model.solve();
        assert_eq!(solved.status(), HighsModelStatus::Optimal);
        solved.objective_value()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn bound_is_below_the_optimum_and_we_are_near_it(p in instance()) {
            let lp = optimum(&p);
            let cfg = continuous();
            let s = solve(&p, None, &cfg);
            prop_assert!(s.lower_bound <= lp * (1.0 + 1e-7), "bound {} lp {lp}", s.lower_bound);
            prop_assert!(s.max_utilisation >= lp * (1.0 - 1e-7));
            prop_assert!(s.max_utilisation <= lp * (1.0 + cfg.tolerance) + 1e-9,
                "ours {} lp {lp}", s.max_utilisation);
        }
    }
}

/// A value from the ones that break naive code: 0, negative, infinite,
/// NaN, or an ordinary one.
fn hostile(ordinary: std::ops::Range<f64>) -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => ordinary,
        1 => Just(0.0),
        1 => Just(-3.0),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NAN),
    ]
}

/// Instances with hostile numbers and paths over links that do not
/// exist or that list a link twice.
fn hostile_instance() -> impl Strategy<Value = TeProblem> {
    (1usize..8).prop_flat_map(|links| {
        let group = (
            hostile(0.1..5.0),
            prop::collection::vec(prop::collection::vec(0..links as u32 + 2, 0..4), 0..4),
        )
            .prop_map(|(demand, paths)| TeGroup {
                demand,
                latency: paths.iter().skip(1).map(|p| p.len() as f64).collect(),
                paths,
            });
        (
            prop::collection::vec(hostile(1.0..10.0), links),
            prop::collection::vec(hostile(0.0..2.0), 0..links + 2),
            prop::collection::vec(group, 0..6),
        )
            .prop_map(|(capacity, background, groups)| TeProblem {
                capacity,
                background,
                groups,
            })
    })
}

/// Whether the optimiser may use the path: every link exists, has a
/// finite positive capacity and appears once.
fn usable(p: &TeProblem, path: &[u32]) -> bool {
    let mut seen = std::collections::HashSet::new();
    path.iter().all(|&e| {
        p.capacity
            .get(e as usize)
            .is_some_and(|c| c.is_finite() && *c > 0.0)
            && seen.insert(e)
    })
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Nothing panics; what the optimiser reports is what the problem's
    /// own utilisation says of its shares; the bound stays below every
    /// split over the usable paths; shares are whole steps.
    #[test]
    fn hostile_input_never_panics_and_stays_consistent(
        p in hostile_instance(),
        granularity in prop_oneof![Just(0u32), Just(1), Just(100), Just(10_000_000)],
        start_scale in prop_oneof![Just(None), Just(Some(1.0)), Just(Some(1e308))],
        seed in prop::collection::vec(0.0f64..1.0, 16),
    ) {
        let cfg = TeConfig { granularity, iterations: 50, ..TeConfig::default() };
        let start: Option<Vec<Vec<f64>>> = start_scale.map(|k| {
            p.groups.iter().map(|g| vec![k; g.paths.len()]).collect()
        });
        let s = solve(&p, start.as_deref(), &cfg);
        prop_assert_eq!(s.shares.len(), p.groups.len());
        let mlu = p.max_utilisation(&s.shares);
        prop_assert!(same(s.max_utilisation, mlu), "reported {} real {mlu}", s.max_utilisation);
        prop_assert!(s.lower_bound.is_finite() && s.lower_bound >= 0.0);
        prop_assert!(s.lower_bound <= mlu * (1.0 + 1e-9) || mlu.is_nan());
        let mut k = 0;
        let random: Vec<Vec<f64>> = p.groups.iter().map(|g| {
            let v: Vec<f64> = g.paths.iter().map(|path| {
                k += 1;
                if usable(&p, path) { seed[k % 16] + 1e-3 } else { 0.0 }
            }).collect();
            let sum: f64 = v.iter().sum();
            v.iter().map(|x| if sum > 0.0 { x / sum } else { 0.0 }).collect()
        }).collect();
        let any_usable = p.groups.iter().all(|g| {
            !(g.demand.is_finite() && g.demand > 0.0) || g.paths.iter().any(|q| usable(&p, q))
        });
        if any_usable {
            let r = p.max_utilisation(&random);
            prop_assert!(s.lower_bound <= r * (1.0 + 1e-9), "bound {} above {r}", s.lower_bound);
        }
        for (x, g) in s.shares.iter().zip(&p.groups) {
            prop_assert_eq!(x.len(), g.paths.len());
            prop_assert!(x.iter().all(|v| v.is_finite() && *v >= 0.0), "{:?}", x);
            if granularity == 100 && g.paths.iter().any(|q| usable(&p, q)) {
                let steps: f64 = x.iter().map(|v| v * 100.0).sum();
                prop_assert!((steps - 100.0).abs() < 1e-6, "{:?}", x);
            }
        }
    }
}

#[test]
fn quantise_keeps_huge_and_tiny_weights_in_proportion() {
    assert_eq!(quantise(&[1e308, 1e308], 100), vec![50, 50]);
    assert_eq!(quantise(&[3e-320, 1e-320], 4), vec![3, 1]);
    assert_eq!(quantise(&[f64::NAN, 1.0, -1.0], 10), vec![0, 10, 0]);
    let big = quantise(&[1.0, 1.0, 1.0], u32::MAX);
    assert_eq!(
        big.iter().map(|w| u64::from(*w)).sum::<u64>(),
        u64::from(u32::MAX)
    );
}

#[test]
fn a_path_that_lists_a_link_twice_is_not_used() {
    let p = TeProblem {
        capacity: vec![35.0, 95.0, 43.5],
        background: vec![17.5, 14.2, 0.4],
        groups: vec![TeGroup {
            demand: 50.5,
            paths: vec![vec![1, 1], vec![0, 0, 1], vec![0, 1]],
            latency: vec![6.9, 6.4, 5.1],
        }],
    };
    let cfg = TeConfig {
        granularity: 0,
        ..TeConfig::default()
    };
    let s = solve(&p, Some(&[vec![0.17, 0.12, 0.15]]), &cfg);
    assert_eq!(s.shares, vec![vec![0.0, 0.0, 1.0]]);
    assert!((s.max_utilisation - p.max_utilisation(&s.shares)).abs() < 1e-12);
}
