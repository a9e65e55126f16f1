//! `struct termios` as x86-64 Linux lays it out, its flags, and the settings a new
//! pseudo-terminal starts with (Linux's `tty_std_termios`).

/// `c_cc` entries of the kernel's `struct termios`.
pub const NCCS: usize = 19;

pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VREPRINT: usize = 12;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;

// c_iflag
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IUCLC: u32 = 0o1000;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IUTF8: u32 = 0o40000;

// c_oflag
pub const OPOST: u32 = 0o1;
pub const OLCUC: u32 = 0o2;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
pub const ONOCR: u32 = 0o20;
pub const ONLRET: u32 = 0o40;
pub const TABDLY: u32 = 0o14000;
pub const XTABS: u32 = 0o14000;

// c_cflag
pub const CBAUD: u32 = 0o10017;
pub const CBAUDEX: u32 = 0o10000;
pub const CSIZE: u32 = 0o60;
pub const CS8: u32 = 0o60;
pub const CREAD: u32 = 0o200;
pub const PARENB: u32 = 0o400;
pub const B38400: u32 = 0o17;
/// `c_cflag >> IBSHIFT` holds the input speed, when it differs.
const IBSHIFT: u32 = 16;

// c_lflag
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const TOSTOP: u32 = 0o400;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOPRT: u32 = 0o2000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;

/// A terminal's settings (`struct termios2`: `struct termios` and the two speeds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
    pub ispeed: u32,
    pub ospeed: u32,
}

impl Default for Termios {
    /// What a new pseudo-terminal's slave starts with.
    fn default() -> Self {
        Self {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B38400 | CS8 | CREAD,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            // ^C ^\ DEL ^U ^D, TIME 0, MIN 1, SWTC, ^Q ^S ^Z, EOL, ^R ^O ^W ^V, EOL2.
            cc: [
                3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0,
            ],
            ispeed: 38400,
            ospeed: 38400,
        }
    }
}

/// The speeds of the `Bnnn` codes (`CBAUD` bits; with `CBAUDEX`, index 16 on).
const BAUDS: [u32; 31] = [
    0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600,
    115_200, 230_400, 460_800, 500_000, 576_000, 921_600, 1_000_000, 1_152_000, 1_500_000,
    2_000_000, 2_500_000, 3_000_000, 3_500_000, 4_000_000,
];

fn baud(code: u32) -> u32 {
    let index = if code & CBAUDEX != 0 {
        15 + (code & 0o17) as usize
    } else {
        (code & 0o17) as usize
    };
    BAUDS.get(index).copied().unwrap_or(0)
}

impl Termios {
    /// The 36 bytes of `struct termios` (`TCGETS`).
    pub fn to_bytes(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[0..4].copy_from_slice(&self.iflag.to_ne_bytes());
        out[4..8].copy_from_slice(&self.oflag.to_ne_bytes());
        out[8..12].copy_from_slice(&self.cflag.to_ne_bytes());
        out[12..16].copy_from_slice(&self.lflag.to_ne_bytes());
        out[16] = self.line;
        out[17..36].copy_from_slice(&self.cc);
        out
    }

    /// The 44 bytes of `struct termios2` (`TCGETS2`).
    pub fn to_bytes2(&self) -> [u8; 44] {
        let mut out = [0u8; 44];
        out[..36].copy_from_slice(&self.to_bytes());
        out[36..40].copy_from_slice(&self.ispeed.to_ne_bytes());
        out[40..44].copy_from_slice(&self.ospeed.to_ne_bytes());
        out
    }

    /// Settings from `struct termios` (`TCSETS*`): the speeds follow the `CBAUD` codes.
    pub fn from_bytes(raw: &[u8; 36]) -> Self {
        let word = |i: usize| u32::from_ne_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&raw[17..36]);
        let cflag = word(8);
        let ospeed = baud(cflag & CBAUD);
        let icode = (cflag >> IBSHIFT) & CBAUD;
        Self {
            iflag: word(0),
            oflag: word(4),
            cflag,
            lflag: word(12),
            line: raw[16],
            cc,
            ispeed: if icode == 0 { ospeed } else { baud(icode) },
            ospeed,
        }
    }

    /// Settings from `struct termios2` (`TCSETS2*`), speeds as given.
    pub fn from_bytes2(raw: &[u8; 44]) -> Self {
        let mut first = [0u8; 36];
        first.copy_from_slice(&raw[..36]);
        let word = |i: usize| u32::from_ne_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        Self {
            ispeed: word(36),
            ospeed: word(40),
            ..Self::from_bytes(&first)
        }
    }

    pub fn lflag(&self, f: u32) -> bool {
        self.lflag & f != 0
    }

    pub fn iflag(&self, f: u32) -> bool {
        self.iflag & f != 0
    }

    pub fn oflag(&self, f: u32) -> bool {
        self.oflag & f != 0
    }

    /// Whether `c` is the special character at `index` (a 0 entry disables it, as
    /// `_POSIX_VDISABLE`).
    pub fn is(&self, c: u8, index: usize) -> bool {
        let v = self.cc[index];
        v != 0 && c == v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_speeds() {
        let t = Termios::default();
        let bytes = t.to_bytes();
        assert_eq!(Termios::from_bytes(&bytes), t);
        assert_eq!(&bytes[0..4], &0x500u32.to_ne_bytes(), "ICRNL|IXON");
        assert_eq!(&bytes[12..16], &0x8a3bu32.to_ne_bytes());
        let mut fast = t;
        fast.cflag = (fast.cflag & !CBAUD) | CBAUDEX | 2; // B115200
        let back = Termios::from_bytes(&fast.to_bytes());
        assert_eq!((back.ispeed, back.ospeed), (115_200, 115_200));
        let mut two = t.to_bytes2();
        two[40..44].copy_from_slice(&9600u32.to_ne_bytes());
        assert_eq!(Termios::from_bytes2(&two).ospeed, 9600);
    }
}
