//! Setting up and tearing down the forwarding elements on the testbed:
//! eBPF fabric stage, TC redirect floor, Open vSwitch, kernel forwarding,
//! and attaching that retries while an old TCX link is still released.

use super::*;

impl Testbed {
    /// Loads the fabric stage and installs what the agent would for the
    /// MPLS transit and pop entries, the egress port's source MAC and the
    /// IPv4 route (it is attached to the ports only while the eBPF
    /// configuration runs).
    pub(crate) fn load_fabric(&mut self) -> Result<()> {
        let _ = remove_instance(Path::new(DEFAULT_PIN_ROOT), &self.pin_instance);
        let mut fabric = Fabric::load(&self.pin_instance).context("load the fabric stage")?;
        let out = self.dut_out();
        let egress = in_netns(&self.dut, || ifindex(&out))?;
        // As the agent maps `mpls_forward_to` (label kept, MACs left to the
        // egress rewrite) and `mpls_pop_forward_to` (pop, destination MAC).
        let transit = MplsForward {
            egress_ifindex: egress,
            egress_port: FABRIC_OUT_PORT,
            flags: 0,
            dst_mac: [0; 6],
            src_mac: [0; 6],
        };
        fabric
            .insert_mpls_forward(LABEL_TRANSIT, transit)
            .context("insert the MPLS transit entry")?;
        fabric
            .insert_mpls_forward(
                LABEL_POP,
                MplsForward {
                    flags: MPLS_FLAG_POP | MPLS_FLAG_SET_DST_MAC,
                    dst_mac: mac(ROLE_SINK, 0),
                    ..transit
                },
            )
            .context("insert the MPLS pop entry")?;
        fabric
            .tables_mut()
            .set_egress_rewrite(FABRIC_OUT_PORT, Some(mac(ROLE_DUT_OUT, 0)))
            .context("set the egress port's source MAC")?;
        match install_routes(&mut fabric, egress) {
            Ok(()) => self.ebpf_ipv4 = true,
            Err(e) => println!("the fabric stage does not route IPv4 here ({e:#}): MPLS only"),
        }
        // No switch ID, no watch rules: INT is off, the egress stage counts.
        let int = IntTransit::new(&mut fabric).context("load the egress stage")?;
        self.int = Some(int);
        self.fabric = Some(fabric);
        Ok(())
    }

    /// Loads the redirect-only program (to the forwarding element's output).
    pub(crate) fn load_floor(&mut self) -> Result<()> {
        let out = self.dut_out();
        let egress = in_netns(&self.dut, || ifindex(&out))?;
        let program = sys::BpfFd::load_tc("sxb_redirect", &sys::redirect_program(egress))
            .context("load the redirect-only TC program")?;
        self.floor_program = Some(program);
        Ok(())
    }

    /// Starts Open vSwitch in the forwarding namespace with a `netdev`
    /// bridge and the flows of every traffic kind (ports come and go with
    /// the OVS configuration).
    pub(crate) fn start_ovs(&mut self, programs: OvsPrograms) -> Result<()> {
        let ovs = Ovs::start(programs, &self.prefix, &self.dut)?;
        self.ovs = Some(ovs);
        let Some(ovs) = self.ovs.as_ref() else {
            return Ok(());
        };
        let src = mac_text(mac(ROLE_DUT_OUT, 0));
        let dst = mac_text(mac(ROLE_SINK, 0));
        let mut flows = Vec::new();
        for k in 0..self.senders {
            let port = ovs_in_port(k);
            flows.push(format!(
                "priority=10,in_port={port},ip,\
                 actions=mod_dl_src:{src},mod_dl_dst:{dst},dec_ttl,output:{OVS_OUT_PORT}"
            ));
            flows.push(format!(
                "priority=10,in_port={port},mpls,mpls_label={LABEL_TRANSIT},\
                 actions=dec_mpls_ttl,mod_dl_src:{src},output:{OVS_OUT_PORT}"
            ));
            flows.push(format!(
                "priority=10,in_port={port},mpls,mpls_label={LABEL_POP},\
                 actions=pop_mpls:0x0800,mod_dl_src:{src},mod_dl_dst:{dst},\
                 output:{OVS_OUT_PORT}"
            ));
        }
        ovs.ofctl(&["del-flows", &ovs.bridge_target()])?;
        for flow in &flows {
            ovs.ofctl(&["add-flow", &ovs.bridge_target(), flow])?;
        }
        Ok(())
    }

    /// Sets the forwarding element up as `dut`.
    pub(crate) fn enter(&mut self, dut: Dut) -> Result<()> {
        check_interrupted()?;
        match dut {
            Dut::Direct => {}
            Dut::Kernel => sysctl(&self.dut, "net.ipv4.ip_forward", "1")?,
            Dut::TcFloor => {
                let Some(program) = self.floor_program.as_ref() else {
                    bail!("the redirect-only program is not loaded");
                };
                for k in 0..self.senders {
                    let port = self.dut_in(k);
                    let link = attach_tcx_ingress(&self.dut, program, &port)
                        .with_context(|| format!("attach the redirect-only program to {port}"))?;
                    self.phase_links.push(link);
                }
            }
            Dut::Ebpf | Dut::EbpfIngress => {
                let mut ports: Vec<(String, u16)> = (0..self.senders)
                    .map(|k| (self.dut_in(k), fabric_in_port(k)))
                    .collect();
                ports.push((self.dut_out(), FABRIC_OUT_PORT));
                let (Some(fabric), Some(int)) = (self.fabric.as_mut(), self.int.as_mut()) else {
                    bail!("the fabric stage is not loaded");
                };
                let egress = dut == Dut::Ebpf;
                // Like the agent's data plane: the ingress stage on every
                // port, then the egress (INT transit) stage on every port.
                in_netns(&self.dut, || {
                    for (port, number) in &ports {
                        retry_busy(|| fabric.attach(port, *number))
                            .with_context(|| format!("attach the fabric stage to {port}"))?;
                    }
                    for (port, _) in ports.iter().filter(|_| egress) {
                        retry_busy(|| int.attach(fabric, port))
                            .with_context(|| format!("attach the egress stage to {port}"))?;
                    }
                    Ok(())
                })?;
            }
            Dut::Ovs | Dut::OvsXdp => {
                let Some(ovs) = self.ovs.as_ref() else {
                    bail!("Open vSwitch is not running");
                };
                let mut ports: Vec<(String, usize)> = (0..self.senders)
                    .map(|k| (self.dut_in(k), ovs_in_port(k)))
                    .collect();
                ports.push((self.dut_out(), OVS_OUT_PORT));
                // `system` ports are read and written through packet
                // sockets; `afxdp-nonpmd` ports through AF_XDP sockets fed
                // by an XDP program OVS attaches, polled by the main thread
                // like the packet sockets (no busy-polling PMD thread, which
                // would take one of the CPUs whole).
                let port_type = if dut == Dut::OvsXdp {
                    "type=afxdp-nonpmd"
                } else {
                    "type=system"
                };
                let mut args: Vec<String> = Vec::new();
                for (port, number) in &ports {
                    let number = format!("ofport_request={number}");
                    let mut set = vec!["--", "add-port", &ovs.bridge, port];
                    set.extend(["--", "set", "Interface", port, port_type, &number]);
                    if dut == Dut::OvsXdp {
                        set.push("options:xdp-mode=best-effort");
                    }
                    args.extend(set.into_iter().map(String::from));
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ovs.vsctl(&args)?;
                if dut == Dut::Ovs {
                    // OVS reads copies of the frames from its packet
                    // sockets; stop the originals before the forwarding
                    // namespace's own stack.
                    let Some(drop) = self.drop_program.as_ref() else {
                        bail!("the drop program is not loaded");
                    };
                    for k in 0..self.senders {
                        let port = self.dut_in(k);
                        let link = attach_tcx_ingress(&self.dut, drop, &port)
                            .with_context(|| format!("attach the TCX drop to {port}"))?;
                        self.phase_links.push(link);
                    }
                }
            }
        }
        Ok(())
    }

    /// Undoes [`Testbed::enter`].
    pub(crate) fn leave(&mut self, dut: Dut) -> Result<()> {
        self.phase_links.clear();
        match dut {
            Dut::Direct | Dut::TcFloor => {}
            Dut::Kernel => sysctl(&self.dut, "net.ipv4.ip_forward", "0")?,
            Dut::Ebpf | Dut::EbpfIngress => {
                let mut ports: Vec<String> = (0..self.senders).map(|k| self.dut_in(k)).collect();
                ports.push(self.dut_out());
                if let (Some(fabric), Some(int)) = (self.fabric.as_mut(), self.int.as_mut()) {
                    for port in &ports {
                        int.detach(fabric, port)
                            .with_context(|| format!("detach the egress stage from {port}"))?;
                        fabric
                            .detach(port)
                            .with_context(|| format!("detach the fabric stage from {port}"))?;
                    }
                }
            }
            Dut::Ovs | Dut::OvsXdp => {
                if let Some(ovs) = self.ovs.as_ref() {
                    let mut args: Vec<String> = Vec::new();
                    let mut ports: Vec<String> =
                        (0..self.senders).map(|k| self.dut_in(k)).collect();
                    ports.push(self.dut_out());
                    for port in &ports {
                        args.extend(
                            ["--", "--if-exists", "del-port", &ovs.bridge, port].map(String::from),
                        );
                    }
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    ovs.vsctl(&args)?;
                }
            }
        }
        Ok(())
    }
}

/// Runs `attach` until it does not fail with `EEXIST`, for up to 2 s.
///
/// A detached fabric port's TCX link is pinned, and unpinning releases the
/// link from a kernel work queue, after `detach` has returned: attaching
/// the same program to the same interface right away can still find the
/// old link there (`bpf_mprog_attach`: EEXIST).
pub(crate) fn retry_busy<T, E>(mut attach: impl FnMut() -> Result<T, E>) -> Result<T, E>
where
    E: std::error::Error + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match attach() {
            Err(e) if Instant::now() < deadline && is_eexist(&e) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// Whether `error` or one of its sources is an OS error EEXIST.
pub(crate) fn is_eexist(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            == Some(libc::EEXIST)
        {
            return true;
        }
        next = e.source();
    }
    false
}
