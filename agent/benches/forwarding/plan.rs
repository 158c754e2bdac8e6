//! What is measured (forwarding elements, traffic kinds, cases, samples,
//! the route table of the eBPF stage) and the run that measures it.

use super::*;

// ---------------------------------------------------------------------------
// What is measured
// ---------------------------------------------------------------------------

/// The forwarding element between senders and receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Dut {
    /// No forwarder: the senders' direct veths (their maximum rate).
    Direct,
    Kernel,
    /// A TC program that only redirects.
    TcFloor,
    Ebpf,
    /// The fabric's ingress stage without the egress stage.
    EbpfIngress,
    /// OVS with `system` ports (packet sockets).
    Ovs,
    /// OVS with `afxdp-nonpmd` ports.
    OvsXdp,
}

/// What the senders send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Traffic {
    Ipv4,
    /// MPLS, label [`LABEL_TRANSIT`]: swapped to itself, TTL decremented.
    MplsTransit,
    /// MPLS, label [`LABEL_POP`]: popped, IPv4 goes out.
    MplsPop,
}

/// One row of the result tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Case {
    pub(crate) dut: Dut,
    pub(crate) traffic: Traffic,
}

impl Case {
    pub(crate) fn label(self) -> &'static str {
        match (self.dut, self.traffic) {
            (Dut::Direct, _) => "direct veth (sender max)",
            (Dut::Kernel, _) => "kernel IPv4 forwarding",
            (Dut::TcFloor, _) => "TC redirect only (floor)",
            (Dut::Ebpf, Traffic::Ipv4) => "eBPF fabric, IPv4",
            (Dut::Ebpf, Traffic::MplsTransit) => "eBPF fabric, MPLS transit",
            (Dut::Ebpf, Traffic::MplsPop) => "eBPF fabric, MPLS pop",
            (Dut::EbpfIngress, Traffic::Ipv4) => "eBPF ingress only, IPv4",
            (Dut::EbpfIngress, Traffic::MplsTransit) => "eBPF ingress only, MPLS tr.",
            (Dut::EbpfIngress, Traffic::MplsPop) => "eBPF ingress only, MPLS pop",
            (Dut::Ovs, Traffic::Ipv4) => "OVS netdev, IPv4",
            (Dut::Ovs, Traffic::MplsTransit) => "OVS netdev, MPLS transit",
            (Dut::Ovs, Traffic::MplsPop) => "OVS netdev, MPLS pop",
            (Dut::OvsXdp, Traffic::Ipv4) => "OVS netdev AF_XDP, IPv4",
            (Dut::OvsXdp, Traffic::MplsTransit) => "OVS netdev AF_XDP, MPLS tr.",
            (Dut::OvsXdp, Traffic::MplsPop) => "OVS netdev AF_XDP, MPLS pop",
        }
    }
}

impl Dut {
    /// Whether this is one of the OVS configurations.
    pub(crate) fn is_ovs(self) -> bool {
        matches!(self, Self::Ovs | Self::OvsXdp)
    }

    /// The name `--only` takes.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "direct" => Self::Direct,
            "kernel" => Self::Kernel,
            "floor" => Self::TcFloor,
            "ebpf" => Self::Ebpf,
            "ebpf-ingress" => Self::EbpfIngress,
            "ovs" => Self::Ovs,
            "ovs-afxdp" => Self::OvsXdp,
            _ => return None,
        })
    }
}

/// The forwarders of this run, each with the traffic kinds sent through it.
pub(crate) type Plan = Vec<(Dut, Vec<Traffic>)>;

/// The traffic kinds of `dut` in `plan`.
pub(crate) fn traffics(plan: &Plan, dut: Dut) -> &[Traffic] {
    plan.iter()
        .find(|(d, _)| *d == dut)
        .map_or(&[], |(_, traffics)| traffics.as_slice())
}

/// Frame lengths without the FCS: 60 (a 64-byte frame on the wire) and 1514
/// (a 1500-byte IP MTU).
pub(crate) const FRAME_SMALL: usize = 60;
pub(crate) const FRAME_LARGE: usize = 1514;

/// Flows (UDP source ports) per sender.
pub(crate) const FLOWS: u16 = 64;

pub(crate) const LABEL_TRANSIT: u32 = 100;
pub(crate) const LABEL_POP: u32 = 200;

/// The route of the measured traffic (10.80.0.0/16 through the output
/// port) among a few hundred others, so that the LPM trie has some depth.
pub(crate) fn install_routes(fabric: &mut Fabric, egress: u32) -> Result<()> {
    let tables = fabric.tables_mut();
    let next_hop = NextHop {
        egress_ifindex: egress,
        egress_port: FABRIC_OUT_PORT,
        flags: 0,
        dst_mac: mac(ROLE_SINK, 0),
        _pad: [0; 2],
    };
    let mut routes = vec![([10, 80, 0, 0], 16)];
    routes.extend((0..=255u8).map(|i| ([10, 81, i, 0], 24)));
    routes.extend((0..64u8).map(|i| ([172, 16 + (i >> 2), (i & 3) << 6, 0], 26)));
    for (slot, (addr, prefix_len)) in (0u32..).zip(routes) {
        tables.reset_route_hits(slot)?;
        let route = Ipv4Route {
            kind: ROUTE_KIND_NEXT_HOP,
            hit_slot: slot,
            group_id: 0,
            next_hop,
        };
        tables.insert_route(addr, prefix_len, &route)?;
    }
    Ok(())
}

/// One measurement window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Packets/s counted at the receiver.
    pub(crate) delivered: f64,
    /// Packets/s the senders handed to their sockets.
    pub(crate) offered: f64,
    /// CPU time spent per delivered packet, in nanoseconds: the sender
    /// threads (which also run the softirqs their sends raise: both veth
    /// hops, the forwarding, the receiver's drop), `ksoftirqd`, and the
    /// OVS daemon's threads when OVS forwards.
    pub(crate) cpu_ns: f64,
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

pub(crate) fn run(options: &Options, cpus: &[usize]) -> Result<()> {
    let started = Instant::now();
    let ovs = if options.ovs {
        match ovs_programs() {
            Ok(programs) => Some(programs),
            Err(why) => {
                println!(
                    "Open vSwitch is not available ({why}): comparing kernel and eBPF only \
                     (install openvswitch-switch for the three-way comparison)"
                );
                None
            }
        }
    } else {
        None
    };

    let wanted = |dut: Dut| options.only.as_ref().is_none_or(|only| only.contains(&dut));
    let floor = options.floor && wanted(Dut::TcFloor);
    let ovs_system = options.ovs_system && wanted(Dut::Ovs);
    let ovs = ovs.filter(|_| ovs_system || wanted(Dut::OvsXdp));

    let mut bed = Testbed::create(options.senders)?;
    bed.configure()?;
    if wanted(Dut::Ebpf) || wanted(Dut::EbpfIngress) {
        bed.load_fabric()?;
    }
    if floor {
        bed.load_floor()?;
    }
    if let Some(programs) = ovs {
        match bed.start_ovs(programs) {
            Ok(()) => {}
            Err(e) => {
                check_interrupted()?;
                println!("Open vSwitch did not start ({e:#}): comparing kernel and eBPF only");
                bed.ovs = None;
            }
        }
    }

    let mut ebpf = vec![Traffic::MplsTransit, Traffic::MplsPop];
    if bed.ebpf_ipv4 {
        ebpf.insert(0, Traffic::Ipv4);
    }
    let all = [Traffic::Ipv4, Traffic::MplsTransit, Traffic::MplsPop];
    let mut plan: Plan = vec![
        (Dut::Direct, vec![Traffic::Ipv4]),
        (Dut::Kernel, vec![Traffic::Ipv4]),
    ];
    if floor {
        plan.push((Dut::TcFloor, vec![Traffic::Ipv4]));
    }
    if bed.fabric.is_some() {
        // The ingress stage alone only when asked for by name (analysis).
        if options.only.is_some() {
            plan.push((Dut::EbpfIngress, ebpf.clone()));
        }
        plan.push((Dut::Ebpf, ebpf));
    }
    if bed.ovs.is_some() {
        if ovs_system {
            plan.push((Dut::Ovs, all.to_vec()));
        }
        plan.push((Dut::OvsXdp, all.to_vec()));
    }
    plan.retain(|(dut, _)| wanted(*dut));

    print_header(options, cpus);
    let mut results: BTreeMap<(Case, usize), Vec<Sample>> = BTreeMap::new();
    // OVS port types that failed: left out of the rest of the run (the
    // comparison goes on without them); any other failure ends the run.
    let mut failed: Vec<Dut> = Vec::new();
    for run in 0..options.runs {
        // Forwarders that are set up in milliseconds take turns size by
        // size, so that the kernel's and the eBPF stage's windows of one
        // size are a few seconds apart at most and see the same background
        // load; OVS (port changes take a tenth of a second) runs as a block.
        let mut steps: Vec<(Dut, &[Traffic], &[usize])> = Vec::new();
        for size in options.sizes.chunks(1) {
            for (dut, dut_traffics) in plan.iter().filter(|(dut, _)| !dut.is_ovs()) {
                steps.push((*dut, dut_traffics, size));
            }
        }
        for (dut, dut_traffics) in plan.iter().filter(|(dut, _)| dut.is_ovs()) {
            steps.push((*dut, dut_traffics, &options.sizes));
        }
        for (dut, dut_traffics, sizes) in steps {
            if failed.contains(&dut) {
                continue;
            }
            let measured = bed
                .enter(dut)
                .and_then(|()| measure_dut(&bed, dut, dut_traffics, sizes, run, options, cpus));
            let left = bed.leave(dut);
            match measured.and_then(|samples| left.map(|()| samples)) {
                Ok(samples) => {
                    for (key, sample) in samples {
                        results.entry(key).or_default().push(sample);
                    }
                }
                Err(e) if dut.is_ovs() => {
                    check_interrupted()?;
                    println!("leaving {dut:?} out of the run: {e:#}");
                    failed.push(dut);
                }
                Err(e) => return Err(e),
            }
        }
    }
    plan.retain(|(dut, _)| !failed.contains(dut));

    let profile = if options.profile {
        bed.profile_fabric(options, cpus, traffics(&plan, Dut::Ebpf))?
    } else {
        BTreeMap::new()
    };
    let counters = bed.fabric_counters()?;
    print_report(options, &plan, &results, &profile);
    if !counters.is_empty() {
        println!("{counters}");
    }
    drop(bed);
    println!(
        "\ntotal time {:.0} s, load average {} at the end; testbed removed",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(())
}
