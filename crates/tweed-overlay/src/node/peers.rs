//! Peers: their next hops, routes and outer header templates, changed between batches.

use super::*;

impl Node {
    pub(super) fn build_peer(&self, cfg: &PeerConfig) -> Result<(Peer, NextHopKind), ConfigError> {
        let missing = |field| ConfigError::MissingMac { subnet: cfg.subnet, field };
        // Through a UDP socket the kernel picks the next hop's MAC; the frame's outer destination is then zero.
        let outer_mac = cfg.node_mac.or(self.config.underlay.gateway_mac).or(self.socket_port.map(|_| MacAddr::ZERO));
        for (field, mac) in [("vtep_mac", cfg.vtep_mac), ("node_mac", cfg.node_mac)] {
            if let Some(mac) = mac
                && (mac.is_multicast() || mac.is_zero())
            {
                return Err(ConfigError::InvalidMac { field, mac });
            }
        }
        let spec = |dst_mac, src_port, dst_port, vni| TemplateSpec {
            src_mac: self.node_mac,
            dst_mac,
            src_ip: self.node_ip,
            dst_ip: cfg.node_ip,
            src_port,
            dst_port,
            vni,
        };
        let (dst_mac, template, kind) = match self.backend {
            Backend::Vxlan { vni, port, .. } => {
                let vtep = cfg.vtep_mac.ok_or_else(|| missing("vtep_mac"))?;
                let outer = outer_mac.ok_or_else(|| missing("node_mac"))?;
                let t = Template::new(&spec(outer, 0, port, Some(vni)));
                (vtep, Some(t), NextHopKind::Vxlan { peer_ip: cfg.node_ip, vtep_mac: vtep })
            }
            Backend::Udp { port } => {
                let outer = outer_mac.ok_or_else(|| missing("node_mac"))?;
                let t = Template::new(&spec(outer, port, port, None));
                (outer, Some(t), NextHopKind::Udp { peer_ip: cfg.node_ip })
            }
            Backend::HostGw => {
                let mac = cfg.node_mac.ok_or_else(|| missing("node_mac"))?;
                (mac, None, NextHopKind::HostGw { peer_ip: cfg.node_ip, peer_mac: mac })
            }
        };
        let (net, mask) = net_mask(cfg.subnet);
        let peer =
            Peer { config: PeerConfig { subnet: cfg.subnet.trunc(), ..cfg.clone() }, net, mask, dst_mac, template };
        Ok((peer, kind))
    }

    pub(super) fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
        a.contains(&b.network()) || b.contains(&a.network())
    }

    /// Adds a peer: a route to its subnet through its backend. Call it between two batches.
    ///
    /// # Errors
    /// A MAC its backend needs is missing or invalid, its subnet overlaps ours or another peer's, its node address
    /// is another peer's, or the table is full.
    pub fn add_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        let subnet = cfg.subnet.trunc();
        if Self::overlaps(subnet, self.config.pod_subnet)
            || self.config.peers.iter().any(|p| Self::overlaps(p.subnet, subnet))
        {
            return Err(ConfigError::Overlap(subnet));
        }
        if self.peers_by_ip.contains_key(&u32::from(cfg.node_ip)) || cfg.node_ip == self.node_ip {
            return Err(ConfigError::DuplicateNodeIp(cfg.node_ip));
        }
        if self.config.peers.len() >= self.config.limits.max_peers as usize {
            return Err(ConfigError::TooManyPeers);
        }
        let (peer, kind) = self.build_peer(&cfg)?;
        let route_err = |e: tweed_route::Error| ConfigError::Route(e.to_string());
        let prefix = Ipv4Prefix::new(u32::from(subnet.network()), subnet.prefix_len()).map_err(route_err)?;
        let id = self.routes.add_next_hop(NextHop::new(kind)).map_err(route_err)?;
        if let Err(e) = self.routes.insert(prefix, id) {
            // The id was just added and nothing points to it.
            let _ = self.routes.remove_next_hop(id);
            return Err(route_err(e));
        }
        self.index_peer(id, &peer);
        let slot = id.0 as usize;
        if self.hops.len() <= slot {
            self.hops.resize(slot + 1, Hop::Empty);
        }
        self.config.peers.push(peer.config.clone());
        self.hops[slot] = Hop::Peer(Box::new(peer));
        self.peers_by_subnet.insert(subnet, id);
        Ok(())
    }

    pub(super) fn index_peer(&mut self, id: NextHopId, peer: &Peer) {
        self.peers_by_ip.insert(u32::from(peer.config.node_ip), id);
        if let Some(mac) = peer.config.node_mac {
            self.peers_by_mac.insert(mac.to_u64(), id);
        }
    }

    pub(super) fn unindex_peer(&mut self, peer: &PeerConfig) {
        self.peers_by_ip.remove(&u32::from(peer.node_ip));
        if let Some(mac) = peer.node_mac {
            self.peers_by_mac.remove(&mac.to_u64());
        }
    }

    /// Changes a peer (found by its subnet): its node address or MACs. Packets in later batches use the new
    /// values; the route is not withdrawn meanwhile.
    ///
    /// # Errors
    /// [`ConfigError::UnknownPeer`], and those of [`Node::add_peer`] about the new values.
    pub fn update_peer(&mut self, cfg: PeerConfig) -> Result<(), ConfigError> {
        let subnet = cfg.subnet.trunc();
        let id = *self.peers_by_subnet.get(&subnet).ok_or(ConfigError::UnknownPeer(subnet))?;
        if let Some(&other) = self.peers_by_ip.get(&u32::from(cfg.node_ip))
            && other != id
        {
            return Err(ConfigError::DuplicateNodeIp(cfg.node_ip));
        }
        let (peer, kind) = self.build_peer(&cfg)?;
        self.routes.replace_next_hop(id, NextHop::new(kind)).map_err(|e| ConfigError::Route(e.to_string()))?;
        if let Some(Hop::Peer(old)) = self.hops.get(id.0 as usize) {
            let old = old.config.clone();
            self.unindex_peer(&old);
        }
        self.index_peer(id, &peer);
        if let Some(p) = self.config.peers.iter_mut().find(|p| p.subnet == subnet) {
            *p = peer.config.clone();
        }
        self.hops[id.0 as usize] = Hop::Peer(Box::new(peer));
        Ok(())
    }

    /// Removes a peer and its route; packets to its subnet are then dropped ([`DropReason::NoRoute`]).
    ///
    /// # Errors
    /// [`ConfigError::UnknownPeer`].
    pub fn remove_peer(&mut self, subnet: Ipv4Net) -> Result<PeerConfig, ConfigError> {
        let subnet = subnet.trunc();
        let id = self.peers_by_subnet.remove(&subnet).ok_or(ConfigError::UnknownPeer(subnet))?;
        let route_err = |e: tweed_route::Error| ConfigError::Route(e.to_string());
        let prefix = Ipv4Prefix::new(u32::from(subnet.network()), subnet.prefix_len()).map_err(route_err)?;
        self.routes.remove(prefix);
        self.routes.remove_next_hop(id).map_err(route_err)?;
        let hop = core::mem::replace(&mut self.hops[id.0 as usize], Hop::Empty);
        let Hop::Peer(peer) = hop else { return Err(ConfigError::UnknownPeer(subnet)) };
        self.unindex_peer(&peer.config);
        self.config.peers.retain(|p| p.subnet != subnet);
        Ok(peer.config)
    }
}
