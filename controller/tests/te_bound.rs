//! Traffic engineering on random instances: the lower bound the optimiser
//! reports is a real bound (never above the worst utilisation of any
//! split, nor above the LP optimum when HiGHS is built in), and the split
//! it returns is within its tolerance of that bound.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use proptest::prelude::*;
use solyx::routing::te::{solve, whole_groups, TeConfig, TeGroup, TeProblem};

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
