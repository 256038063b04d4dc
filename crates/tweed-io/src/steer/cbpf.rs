//! A small assembler for classic BPF (the `struct sock_filter` programs of `SO_ATTACH_FILTER`,
//! `SO_ATTACH_REUSEPORT_CBPF`, `PACKET_FANOUT_CBPF`): the few instructions the steering program needs, with
//! labels for the jumps, so that nobody counts jump offsets by hand.
//!
//! Classic BPF jumps forward only, by at most 255 instructions: [`Asm::finish`] refuses anything else, and an
//! undefined or twice-defined label, so a program it returns is one the kernel's checker accepts (tested against
//! the kernel in `tests/steering.rs`). Under `cfg(test)`, [`run`] executes such a program on a byte slice the way
//! the kernel does (a load beyond the end ends the program with 0), which is how the unit tests compare the
//! program with its Rust twin.

use core::fmt;

/// One instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Insn {
    pub(crate) code: u16,
    pub(crate) jt: u8,
    pub(crate) jf: u8,
    pub(crate) k: u32,
}

// Instruction classes, sizes, modes and operations (linux/filter.h, linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const MSH: u16 = 0xa0;
const K: u16 = 0x00;
const X: u16 = 0x08;
const A: u16 = 0x10;
const JEQ: u16 = 0x10;
const JSET: u16 = 0x40;
const MUL: u16 = 0x20;
const AND: u16 = 0x50;
const RSH: u16 = 0x70;
const MOD: u16 = 0x90;
const XOR: u16 = 0xa0;
const TAX: u16 = 0x00;

/// The size of a load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Size {
    /// One byte.
    B,
    /// Two bytes, network order.
    H,
    /// Four bytes, network order.
    W,
}

impl Size {
    const fn code(self) -> u16 {
        match self {
            Self::B => B,
            Self::H => H,
            Self::W => W,
        }
    }
}

/// An arithmetic operation on A.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alu {
    Mul,
    And,
    Rsh,
    Mod,
    Xor,
}

impl Alu {
    const fn code(self) -> u16 {
        match self {
            Self::Mul => MUL,
            Self::And => AND,
            Self::Rsh => RSH,
            Self::Mod => MOD,
            Self::Xor => XOR,
        }
    }
}

/// A jump target, defined once with [`Asm::label`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Why a program could not be assembled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AsmError {
    /// A jump to a label never defined.
    Undefined(usize),
    /// A label defined twice.
    Redefined(usize),
    /// A jump backwards, or further than 255 instructions.
    OutOfReach { at: usize, to: usize },
    /// More instructions than the kernel takes (`BPF_MAXINSNS`, 4096), or none.
    Length(usize),
    /// A division or modulo by zero (the kernel refuses it).
    DivByZero(usize),
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Undefined(l) => write!(f, "label {l} is never defined"),
            Self::Redefined(l) => write!(f, "label {l} is defined twice"),
            Self::OutOfReach { at, to } => write!(f, "instruction {at} cannot jump to {to} (forward, 255 at most)"),
            Self::Length(n) => write!(f, "a program of {n} instructions (1 to 4096)"),
            Self::DivByZero(at) => write!(f, "instruction {at} divides by zero"),
        }
    }
}

impl std::error::Error for AsmError {}

/// Where a jump goes: a label not yet placed.
#[derive(Clone, Copy, Debug)]
struct Fixup {
    at: usize,
    jt: Label,
    jf: Label,
}

/// A program being written.
#[derive(Debug, Default)]
pub(crate) struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<Fixup>,
    redefined: Option<usize>,
}

impl Asm {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, code: u16, k: u32) -> &mut Self {
        self.insns.push(Insn { code, jt: 0, jf: 0, k });
        self
    }

    /// A new label, placed later with [`Asm::label`].
    pub(crate) fn new_label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `label` at the next instruction.
    pub(crate) fn label(&mut self, label: Label) -> &mut Self {
        match self.labels.get_mut(label.0) {
            Some(slot @ None) => *slot = Some(self.insns.len()),
            _ => self.redefined = Some(label.0),
        }
        self
    }

    /// `A = packet[k..]` (`ld`/`ldh`/`ldb [k]`).
    pub(crate) fn ld_abs(&mut self, size: Size, k: u32) -> &mut Self {
        self.push(LD | size.code() | ABS, k)
    }

    /// `A = packet[X + k..]` (`ld`/`ldh`/`ldb [x + k]`).
    pub(crate) fn ld_ind(&mut self, size: Size, k: u32) -> &mut Self {
        self.push(LD | size.code() | IND, k)
    }

    /// `A = M[k]`.
    pub(crate) fn ld_mem(&mut self, k: u32) -> &mut Self {
        self.push(LD | MEM, k)
    }

    /// `X = M[k]`.
    pub(crate) fn ldx_mem(&mut self, k: u32) -> &mut Self {
        self.push(LDX | MEM, k)
    }

    /// `X = 4 * (packet[k] & 0xf)`: an IPv4 header's length (`ldxb 4*([k]&0xf)`).
    pub(crate) fn ldx_ihl(&mut self, k: u32) -> &mut Self {
        self.push(LDX | B | MSH, k)
    }

    /// `M[k] = A`.
    pub(crate) fn st(&mut self, k: u32) -> &mut Self {
        self.push(ST, k)
    }

    /// `X = A`.
    pub(crate) fn tax(&mut self) -> &mut Self {
        self.push(MISC | TAX, 0)
    }

    /// `A = A op k`.
    pub(crate) fn alu_k(&mut self, op: Alu, k: u32) -> &mut Self {
        self.push(ALU | op.code() | K, k)
    }

    /// `A = A op X`.
    pub(crate) fn alu_x(&mut self, op: Alu) -> &mut Self {
        self.push(ALU | op.code() | X, 0)
    }

    fn jump(&mut self, op: u16, k: u32, jt: Label, jf: Label) -> &mut Self {
        self.fixups.push(Fixup { at: self.insns.len(), jt, jf });
        self.push(JMP | op | K, k)
    }

    /// To `jt` when `A == k`, else to `jf`.
    pub(crate) fn jeq(&mut self, k: u32, jt: Label, jf: Label) -> &mut Self {
        self.jump(JEQ, k, jt, jf)
    }

    /// To `jt` when `A & k != 0`, else to `jf`.
    pub(crate) fn jset(&mut self, k: u32, jt: Label, jf: Label) -> &mut Self {
        self.jump(JSET, k, jt, jf)
    }

    /// Always to `to` (`ja`, written as a conditional jump whose both ways lead there, so it is resolved as one).
    pub(crate) fn ja(&mut self, to: Label) -> &mut Self {
        self.jump(JSET, 0, to, to)
    }

    /// Returns `k`.
    pub(crate) fn ret_k(&mut self, k: u32) -> &mut Self {
        self.push(RET | K, k)
    }

    /// Returns A.
    pub(crate) fn ret_a(&mut self) -> &mut Self {
        self.push(RET | A, 0)
    }

    /// The program, with every jump resolved.
    pub(crate) fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        if let Some(l) = self.redefined {
            return Err(AsmError::Redefined(l));
        }
        if self.insns.is_empty() || self.insns.len() > 4096 {
            return Err(AsmError::Length(self.insns.len()));
        }
        let resolve = |labels: &[Option<usize>], at: usize, l: Label| -> Result<u8, AsmError> {
            let to = labels.get(l.0).copied().flatten().ok_or(AsmError::Undefined(l.0))?;
            to.checked_sub(at + 1).and_then(|d| u8::try_from(d).ok()).ok_or(AsmError::OutOfReach { at, to })
        };
        for f in &self.fixups {
            let jt = resolve(&self.labels, f.at, f.jt)?;
            let jf = resolve(&self.labels, f.at, f.jf)?;
            self.insns[f.at].jt = jt;
            self.insns[f.at].jf = jf;
        }
        for (at, i) in self.insns.iter().enumerate() {
            if i.code == ALU | MOD | K && i.k == 0 {
                return Err(AsmError::DivByZero(at));
            }
        }
        Ok(self.insns)
    }
}

/// Runs `prog` on `packet` as the kernel does: `None` when it falls off its end or meets an instruction outside
/// the assembler's set (the kernel would have refused it), `Some(0)` when a load reads beyond the packet.
#[cfg(test)]
pub(crate) fn run(prog: &[Insn], packet: &[u8]) -> Option<u32> {
    let load = |off: u32, size: u16| -> Option<u32> {
        let off = usize::try_from(off).ok()?;
        let n = match size {
            B => 1,
            H => 2,
            _ => 4,
        };
        let bytes = packet.get(off..off.checked_add(n)?)?;
        Some(bytes.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b)))
    };
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0;
    loop {
        let i = *prog.get(pc)?;
        pc += 1;
        match i.code & 0x07 {
            LD if i.code & 0xe0 == MEM => a = mem[i.k as usize & 15],
            LD => {
                let off = if i.code & 0xe0 == IND { x.wrapping_add(i.k) } else { i.k };
                let Some(v) = load(off, i.code & 0x18) else { return Some(0) };
                a = v;
            }
            LDX if i.code & 0xe0 == MEM => x = mem[i.k as usize & 15],
            LDX => {
                let Some(v) = load(i.k, B) else { return Some(0) };
                x = 4 * (v & 0xf);
            }
            ST => mem[i.k as usize & 15] = a,
            ALU => {
                let v = if i.code & X == X { x } else { i.k };
                a = match i.code & 0xf0 {
                    MUL => a.wrapping_mul(v),
                    AND => a & v,
                    RSH => a.checked_shr(v).unwrap_or(0),
                    MOD => a.checked_rem(v).unwrap_or(0),
                    XOR => a ^ v,
                    _ => return None,
                };
            }
            JMP => {
                let taken = match i.code & 0xf0 {
                    JEQ => a == i.k,
                    JSET => a & i.k != 0,
                    _ => return None,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            RET => return Some(if i.code & 0x18 == A { a } else { i.k }),
            MISC => x = a,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    /// Each instruction's encoding, as `tcpdump -dd` prints it.
    #[test]
    fn test_encoding() {
        let mut asm = Asm::new();
        let (yes, no) = (asm.new_label(), asm.new_label());
        asm.ld_abs(Size::H, 12)
            .ld_abs(Size::W, 26)
            .ld_abs(Size::B, 23)
            .ld_ind(Size::H, 14)
            .ldx_ihl(14)
            .ld_mem(1)
            .ldx_mem(2)
            .st(3)
            .tax()
            .alu_k(Alu::Mul, 0x9e37_79b1)
            .alu_k(Alu::Rsh, 16)
            .alu_k(Alu::Mod, 3)
            .alu_k(Alu::And, 0xf0)
            .alu_x(Alu::Xor)
            .jeq(0x800, yes, no)
            .jset(0x1fff, no, yes)
            .label(yes)
            .ret_a()
            .label(no)
            .ret_k(0);
        let expected = [
            insn(0x28, 0, 0, 12),
            insn(0x20, 0, 0, 26),
            insn(0x30, 0, 0, 23),
            insn(0x48, 0, 0, 14),
            insn(0xb1, 0, 0, 14),
            insn(0x60, 0, 0, 1),
            insn(0x61, 0, 0, 2),
            insn(0x02, 0, 0, 3),
            insn(0x07, 0, 0, 0),
            insn(0x24, 0, 0, 0x9e37_79b1),
            insn(0x74, 0, 0, 16),
            insn(0x94, 0, 0, 3),
            insn(0x54, 0, 0, 0xf0),
            insn(0xac, 0, 0, 0),
            insn(0x15, 1, 2, 0x800),
            insn(0x45, 1, 0, 0x1fff),
            insn(0x16, 0, 0, 0),
            insn(0x06, 0, 0, 0),
        ];
        assert_eq!(asm.finish().unwrap(), expected);
    }

    #[test]
    fn test_refusals() {
        let mut asm = Asm::new();
        let l = asm.new_label();
        asm.label(l).ja(l);
        assert_eq!(asm.finish(), Err(AsmError::OutOfReach { at: 0, to: 0 }));

        let mut asm = Asm::new();
        let l = asm.new_label();
        asm.ja(l);
        assert_eq!(asm.finish(), Err(AsmError::Undefined(0)));

        let mut asm = Asm::new();
        let l = asm.new_label();
        asm.label(l).ret_k(0).label(l);
        assert_eq!(asm.finish(), Err(AsmError::Redefined(0)));

        let mut asm = Asm::new();
        let l = asm.new_label();
        asm.ja(l);
        for _ in 0..256 {
            asm.ret_k(0);
        }
        asm.label(l).ret_k(1);
        assert_eq!(asm.finish(), Err(AsmError::OutOfReach { at: 0, to: 257 }));

        assert_eq!(Asm::new().finish(), Err(AsmError::Length(0)));
        let mut asm = Asm::new();
        asm.alu_k(Alu::Mod, 0).ret_a();
        assert_eq!(asm.finish(), Err(AsmError::DivByZero(0)));
    }

    #[test]
    fn test_run() {
        let mut asm = Asm::new();
        let (v4, other) = (asm.new_label(), asm.new_label());
        asm.ld_abs(Size::H, 0)
            .jeq(0x0800, v4, other)
            .label(v4)
            .ldx_ihl(2)
            .ld_ind(Size::B, 0)
            .st(0)
            .ldx_mem(0)
            .ld_abs(Size::B, 3)
            .alu_x(Alu::Xor)
            .ret_a()
            .label(other)
            .ret_k(7);
        let prog = asm.finish().unwrap();
        // X = 4 * 5 = 20 -> A = packet[20] = 0x33; A = packet[3] ^ 0x33.
        let mut p = [0u8; 21];
        p[..4].copy_from_slice(&[0x08, 0x00, 0x45, 0x0f]);
        p[20] = 0x33;
        assert_eq!(run(&prog, &p), Some(0x0f ^ 0x33));
        assert_eq!(run(&prog, &p[..20]), Some(0), "a load beyond the end returns 0");
        assert_eq!(run(&prog, &[0x86, 0xdd]), Some(7));
        assert_eq!(run(&prog, &[]), Some(0));
    }
}
