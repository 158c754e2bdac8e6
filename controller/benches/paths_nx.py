"""Baseline for the `paths` benchmark: K link-disjoint paths per pair with
networkx, on the graph the benchmark writes as JSON.

Input (argv[1]): {"arcs": [[u, v], ...], "edges": [...], "dests": [...],
"k": K, "budget_s": seconds}. For each destination in `dests`, in order,
and every other edge device as source, finds up to K edge-disjoint paths
(`networkx.edge_disjoint_paths` with cutoff K). Stops after the first
destination that ends past the budget. Prints one JSON line: destinations
done, pairs, paths found and seconds spent.
"""

import json
import sys
import time

import networkx as nx


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    g = nx.DiGraph()
    g.add_edges_from(tuple(a) for a in job["arcs"])
    k = job["k"]
    pairs = paths = done = 0
    start = time.perf_counter()
    for t in job["dests"]:
        for s in job["edges"]:
            if s == t:
                continue
            try:
                found = list(nx.edge_disjoint_paths(g, s, t, cutoff=k))
            except nx.NetworkXNoPath:
                found = []
            pairs += 1
            paths += len(found)
        done += 1
        if time.perf_counter() - start > job["budget_s"]:
            break
    took = time.perf_counter() - start
    print(json.dumps({"dests": done, "pairs": pairs, "paths": paths, "seconds": took}))


if __name__ == "__main__":
    main()
