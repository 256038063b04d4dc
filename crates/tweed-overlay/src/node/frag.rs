//! Fragmentation (RFC 791 §3.2, RFC 1812 §5.2.6) of packets without DF too big for the backend: every fragment
//! but the last carries a multiple of 8 bytes of data, its offset in 8-byte units and MF; the first keeps every
//! option, the others only those whose copy flag is set; each has its own header checksum. The fragments after the
//! first are made in buffers of the pool (no allocation) and forwarded at once; the packet itself, cut down,
//! becomes the first. Either every fragment goes or none: without buffers (or output room) for all of them, the
//! packet is dropped ([`DropReason::FragNoBuffer`]).

use super::*;

/// The options of a header that go into every fragment (RFC 791: copy flag set), into `out`; returns their length.
/// A malformed option ends the list (what comes before it is kept).
fn copied_options(options: &[u8], out: &mut [u8; 40]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < options.len() {
        let kind = options[i];
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let Some(&len) = options.get(i + 1) else { break };
                let len = usize::from(len);
                if len < 2 || i + len > options.len() {
                    break;
                }
                if kind & 0x80 != 0 {
                    out[n..n + len].copy_from_slice(&options[i..i + len]);
                    n += len;
                }
                i += len;
            }
        }
    }
    n
}

impl<E: Encapsulation> Node<E> {
    /// Fragments the IPv4 packet at `l3` of `buf` (checked, TTL already decremented, bigger than the inner MTU)
    /// for next hop `id`: the fragments after the first go to `out`, `buf` is left as the first.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fragment(
        &mut self,
        now: u64,
        pool: &mut Pool,
        buf: &mut PacketBuf,
        id: NextHopId,
        dst: Ipv4Addr,
        l3: usize,
        out: &mut Outputs,
    ) -> Result<(), DropReason> {
        let mtu = usize::from(self.inner_mtu);
        let data = buf.data();
        let ip = ipv4::Packet::new_unchecked(&data[l3..]);
        let hl = ip.header_len();
        let total = usize::from(ip.total_len()).min(data.len() - l3);
        let mut hdr = [0u8; 60];
        hdr[..20].copy_from_slice(&data[l3..l3 + 20]);
        let mut opts = [0u8; 40];
        let olen = copied_options(ip.options(), &mut opts);
        // Padded with zeros (end of option list) to a multiple of 4.
        hdr[20..20 + olen].copy_from_slice(&opts[..olen]);
        let later_hl = 20 + olen.div_ceil(4) * 4;
        let first = mtu.saturating_sub(hl) / 8 * 8;
        let later = mtu.saturating_sub(later_hl) / 8 * 8;
        if first == 0 || later == 0 || total <= hl + first {
            return Err(DropReason::TooBigNoDf);
        }
        let base = usize::from(ip.frag_offset());
        if base + total - hl > 0xffff {
            return Err(DropReason::Ipv4Malformed);
        }
        let more = ip.more_frags();
        let extra = (total - hl - first).div_ceil(later);
        if pool.available() < extra || out.spare() < extra {
            return Err(DropReason::FragNoBuffer);
        }
        // The link header, if any, is the same on every fragment.
        let mut eth = [0u8; ETH];
        let eth = &mut eth[..l3.min(ETH)];
        eth.copy_from_slice(&data[..eth.len()]);
        let ingress = buf.meta().ingress;
        let mut start = hl + first;
        while start < total {
            let end = (start + later).min(total);
            let Some(mut frag) = pool.get() else { return Err(DropReason::FragNoBuffer) };
            let built = frag.extend_from_slice(eth).is_ok()
                && frag.extend_from_slice(&hdr[..later_hl]).is_ok()
                && frag.extend_from_slice(&buf.data()[l3 + start..l3 + end]).is_ok();
            if !built {
                pool.put(frag);
                return Err(DropReason::FragNoBuffer);
            }
            let mut p = ipv4::Packet::new_unchecked(&mut frag.data_mut()[l3..]);
            p.set_header_len(later_hl);
            // Below 0xffff: checked above.
            #[allow(clippy::cast_possible_truncation)]
            {
                p.set_total_len((later_hl + end - start) as u16);
                p.set_frag_offset((base + start - hl) as u16);
            }
            p.set_more_frags(end < total || more);
            p.fill_checksum();
            frag.meta_mut().ingress = ingress;
            self.counters.originated += 1;
            self.counters.fragments_out += 1;
            let step = self.forward(now, pool, &mut frag, id, dst, l3, out);
            self.emit_extra(now, frag, step, pool, out);
            start = end;
        }
        buf.truncate(l3 + hl + first);
        let mut p = ipv4::Packet::new_unchecked(&mut buf.data_mut()[l3..]);
        #[allow(clippy::cast_possible_truncation)] // at most the MTU
        p.set_total_len((hl + first) as u16);
        p.set_more_frags(true);
        p.fill_checksum();
        self.counters.fragmented += 1;
        self.counters.fragments_out += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::copied_options;

    #[test]
    fn test_copied_options() {
        // NOP, record route (7, not copied), loose source route (0x83, copied), EOL.
        let opts = [1, 7, 7, 4, 0, 0, 0, 0, 0x83, 7, 4, 10, 0, 0, 1, 0, 0, 0];
        let mut out = [0u8; 40];
        let n = copied_options(&opts, &mut out);
        assert_eq!(&out[..n], &[0x83, 7, 4, 10, 0, 0, 1]);
        // A length running past the end stops the list.
        let bad = [0x83, 9, 4, 10];
        assert_eq!(copied_options(&bad, &mut out), 0);
        assert_eq!(copied_options(&[0x83, 1], &mut out), 0);
    }
}
