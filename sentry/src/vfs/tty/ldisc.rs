//! The line discipline (Linux's N_TTY) of a pseudo-terminal: what happens to the bytes
//! between the master and the slave.
//!
//! Master writes land in `pending` (Linux's flip buffer) and are taken into the slave's
//! read buffer as room allows, with input processing: `ICRNL`/`INLCR`/`IGNCR`, the signal
//! characters of `ISIG`, flow control of `IXON`, and in canonical mode line editing
//! (`ERASE`, `KILL`, `WERASE`, `LNEXT`, `REPRINT`) with lines ended by newline, `EOF`,
//! `EOL` and `EOL2`. Echoes and slave writes go through output processing (`OPOST`,
//! `ONLCR`, tab expansion, column tracking) into `output`, which the master reads.
//!
//! Pure state: no locking, no waiting, no signals sent. The caller (the pair in
//! [`super`]) sends the signals this returns and wakes the waiters.

use std::collections::VecDeque;

use super::termios::*;

/// Linux's `N_TTY_BUF_SIZE`: the slave's read buffer.
pub const INPUT_MAX: usize = 4096;
/// Bytes a master write may queue ahead of the line discipline.
pub const PENDING_MAX: usize = 32 * 1024;
/// Bytes the slave's output may queue for the master.
pub const OUTPUT_MAX: usize = 64 * 1024;

const NEWLINE: u8 = b'\n';

/// One byte of the slave's read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    /// An ordinary byte.
    Char,
    /// The byte ends a line and is read (newline, `EOL`, `EOL2`).
    Eol,
    /// An `EOF` character: ends a line, is not read.
    Eof,
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    c: u8,
    mark: Mark,
}

/// What a canonical read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Canon {
    /// `n` bytes of a complete line (0 for an `EOF` on an empty line).
    Line(usize),
    /// No complete line yet.
    Empty,
}

#[derive(Default)]
pub struct LineDiscipline {
    pub termios: Termios,
    input: VecDeque<Cell>,
    /// In canonical mode, how many bytes at the front of `input` belong to complete lines.
    canon_head: usize,
    pending: VecDeque<u8>,
    output: VecDeque<u8>,
    column: usize,
    /// The column where the line being edited started (for erasing tabs).
    canon_column: usize,
    /// `LNEXT` was typed: the next character is taken literally.
    lnext: bool,
    /// Slave output stopped by `STOP` (`IXON`) and by `TCOOFF`.
    pub stopped: bool,
    pub tco_stopped: bool,
    /// The output length and columns before this batch of input's echoes: Linux
    /// echoes a batch at its end, and a signal character discards what is not out yet.
    echo_mark: (usize, usize, usize),
}

fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl LineDiscipline {
    pub fn new() -> Self {
        Self::default()
    }

    fn canonical(&self) -> bool {
        self.termios.lflag(ICANON)
    }

    fn continuation(&self, c: u8) -> bool {
        self.termios.iflag(IUTF8) && c & 0xc0 == 0x80
    }

    // ---- Output (slave writes and echoes) ----

    /// Output processing of one byte; false if it does not fit (nothing was written).
    fn output_char(&mut self, c: u8) -> bool {
        let room = OUTPUT_MAX.saturating_sub(self.output.len());
        let t = self.termios;
        if !t.oflag(OPOST) {
            if room == 0 {
                return false;
            }
            self.output.push_back(c);
            return true;
        }
        let mut c = c;
        match c {
            b'\n' => {
                if t.oflag(ONLRET) {
                    self.column = 0;
                }
                if t.oflag(ONLCR) {
                    if room < 2 {
                        return false;
                    }
                    self.column = 0;
                    self.canon_column = 0;
                    self.output.extend(b"\r\n");
                    return true;
                }
                self.canon_column = self.column;
            }
            b'\r' => {
                if t.oflag(ONOCR) && self.column == 0 {
                    return true;
                }
                if t.oflag(OCRNL) {
                    c = b'\n';
                    if t.oflag(ONLRET) {
                        self.column = 0;
                        self.canon_column = 0;
                    }
                } else {
                    self.column = 0;
                    self.canon_column = 0;
                }
            }
            b'\t' => {
                let spaces = 8 - (self.column & 7);
                if t.oflag & TABDLY == XTABS {
                    if room < spaces {
                        return false;
                    }
                    self.column += spaces;
                    self.output.extend(std::iter::repeat_n(b' ', spaces));
                    return true;
                }
                self.column += spaces;
            }
            0x08 => self.column = self.column.saturating_sub(1),
            _ => {
                if !is_cntrl(c) {
                    if t.oflag(OLCUC) {
                        c = c.to_ascii_uppercase();
                    }
                    if !self.continuation(c) {
                        self.column += 1;
                    }
                }
            }
        }
        if room == 0 {
            return false;
        }
        self.output.push_back(c);
        true
    }

    /// A slave write: takes what fits of `data`; 0 while output is stopped or full.
    pub fn write_output(&mut self, data: &[u8]) -> usize {
        if self.stopped || self.tco_stopped {
            return 0;
        }
        let mut n = 0;
        for &c in data {
            if !self.output_char(c) {
                break;
            }
            n += 1;
        }
        n
    }

    /// Puts `c` in the output unprocessed (`TCIOFF`/`TCION` send `STOP`/`START` this way).
    pub fn send_raw(&mut self, c: u8) -> bool {
        if self.output.len() >= OUTPUT_MAX {
            return false;
        }
        self.output.push_back(c);
        true
    }

    /// Echoes `c` as typed (`^X` for a control character under `ECHOCTL`).
    fn echo_char(&mut self, c: u8) {
        if self.termios.lflag(ECHOCTL) && is_cntrl(c) && c != b'\t' {
            self.output_char(b'^');
            self.output_char(c ^ 0o100);
        } else {
            self.output_char(c);
        }
    }

    fn echo_str(&mut self, s: &[u8]) {
        for &c in s {
            self.output_char(c);
        }
    }

    /// The master's read: whatever the slave output holds.
    pub fn read_output(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.output.len());
        for (dst, src) in buf.iter_mut().zip(self.output.drain(..n)) {
            *dst = src;
        }
        n
    }

    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    pub fn output_room(&self) -> usize {
        OUTPUT_MAX.saturating_sub(self.output.len())
    }

    pub fn flush_output(&mut self) {
        self.output.clear();
    }

    // ---- Input (master writes) ----

    /// A master write: queues what fits of `data` and processes what the read buffer
    /// has room for. Returns the bytes taken and the signals to send the foreground
    /// process group.
    pub fn write_input(&mut self, data: &[u8], signals: &mut Vec<i32>) -> usize {
        let n = data
            .len()
            .min(PENDING_MAX.saturating_sub(self.pending.len()));
        self.pending.extend(&data[..n]);
        self.process_pending(signals);
        n
    }

    pub fn pending_room(&self) -> usize {
        PENDING_MAX.saturating_sub(self.pending.len())
    }

    /// Moves queued input into the read buffer as far as room allows.
    pub fn process_pending(&mut self, signals: &mut Vec<i32>) {
        self.echo_mark = (self.output.len(), self.column, self.canon_column);
        while let Some(&c) = self.pending.front() {
            if self.input.len() >= INPUT_MAX - 1 {
                // Full. In canonical mode with no complete line, Linux keeps taking
                // characters, each overwriting the last, so a line can still be ended.
                if !(self.canonical() && self.canon_head == 0) {
                    break;
                }
                if self.input.len() >= INPUT_MAX {
                    self.input.pop_back();
                }
            }
            self.pending.pop_front();
            self.receive(c, signals);
        }
    }

    fn push(&mut self, c: u8, mark: Mark) {
        self.input.push_back(Cell { c, mark });
        if mark != Mark::Char {
            self.canon_head = self.input.len();
        }
    }

    /// Echoes an ordinary character, noting where an edited line starts.
    fn echo_normal(&mut self, c: u8) {
        if self.input.len() == self.canon_head {
            self.canon_column = self.column;
        }
        self.echo_char(c);
    }

    /// Input processing of one character (Linux's `n_tty_receive_char_special`).
    fn receive(&mut self, c: u8, signals: &mut Vec<i32>) {
        let t = self.termios;
        let mut c = c;
        if t.iflag(ISTRIP) {
            c &= 0x7f;
        }
        if t.iflag(IUCLC) && t.lflag(IEXTEN) {
            c = c.to_ascii_lowercase();
        }
        if self.lnext {
            self.lnext = false;
            if t.lflag(ECHO) {
                self.echo_normal(c);
            }
            self.push(c, Mark::Char);
            return;
        }
        if t.iflag(IXON) {
            if t.is(c, VSTART) {
                self.stopped = false;
                return;
            }
            if t.is(c, VSTOP) {
                self.stopped = true;
                return;
            }
            if t.iflag(IXANY) {
                self.stopped = false;
            }
        }
        if t.lflag(ISIG) {
            let sig = if t.is(c, VINTR) {
                Some(crate::kernel::signal::SIGINT)
            } else if t.is(c, VQUIT) {
                Some(crate::kernel::signal::SIGQUIT)
            } else if t.is(c, VSUSP) {
                Some(crate::kernel::signal::SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                signals.push(sig);
                if !t.lflag(NOFLSH) {
                    // The read buffer and the batch's echoes go; what follows in the
                    // same write stays.
                    self.reset_input();
                    let (len, column, canon_column) = self.echo_mark;
                    self.output.truncate(len);
                    self.column = column;
                    self.canon_column = canon_column;
                }
                if t.iflag(IXON) {
                    self.stopped = false;
                }
                if t.lflag(ECHO) {
                    self.echo_char(c);
                }
                return;
            }
        }
        if c == b'\r' {
            if t.iflag(IGNCR) {
                return;
            }
            if t.iflag(ICRNL) {
                c = NEWLINE;
            }
        } else if c == NEWLINE && t.iflag(INLCR) {
            c = b'\r';
        }
        if t.lflag(ICANON) {
            if t.is(c, VERASE) || t.is(c, VKILL) || (t.is(c, VWERASE) && t.lflag(IEXTEN)) {
                self.erase(c);
                return;
            }
            if t.is(c, VLNEXT) && t.lflag(IEXTEN) {
                self.lnext = true;
                if t.lflag(ECHO) && t.lflag(ECHOCTL) {
                    self.output_char(b'^');
                    self.output_char(0x08);
                }
                return;
            }
            if t.is(c, VREPRINT) && t.lflag(ECHO) && t.lflag(IEXTEN) {
                self.echo_char(c);
                self.output_char(NEWLINE);
                let line: Vec<u8> = self
                    .input
                    .iter()
                    .skip(self.canon_head)
                    .map(|x| x.c)
                    .collect();
                for ch in line {
                    self.echo_char(ch);
                }
                return;
            }
            if c == NEWLINE {
                if t.lflag(ECHO) || t.lflag(ECHONL) {
                    self.output_char(NEWLINE);
                }
                self.push(c, Mark::Eol);
                return;
            }
            if t.is(c, VEOF) {
                self.push(c, Mark::Eof);
                return;
            }
            if t.is(c, VEOL) || (t.is(c, VEOL2) && t.lflag(IEXTEN)) {
                if t.lflag(ECHO) {
                    self.echo_normal(c);
                }
                self.push(c, Mark::Eol);
                return;
            }
        }
        if t.lflag(ECHO) {
            if c == NEWLINE {
                self.output_char(NEWLINE);
            } else {
                self.echo_normal(c);
            }
        }
        self.push(c, Mark::Char);
    }

    /// `ERASE`, `WERASE` and `KILL` (Linux's `eraser`).
    fn erase(&mut self, c: u8) {
        let t = self.termios;
        if self.input.len() == self.canon_head {
            return;
        }
        let kill = t.is(c, VKILL);
        let word = !kill && !t.is(c, VERASE);
        if kill {
            if !t.lflag(ECHO) {
                self.input.truncate(self.canon_head);
                return;
            }
            if !t.lflag(ECHOK) || !t.lflag(ECHOKE) || !t.lflag(ECHOE) {
                self.input.truncate(self.canon_head);
                self.echo_char(c);
                if t.lflag(ECHOK) {
                    self.output_char(NEWLINE);
                }
                return;
            }
        }
        let mut seen_word = false;
        while self.input.len() > self.canon_head {
            // One character: a UTF-8 sequence counts as one under IUTF8.
            let mut start = self.input.len() - 1;
            while start > self.canon_head && self.continuation(self.input[start].c) {
                start -= 1;
            }
            let ch = self.input[start].c;
            if word {
                if is_word(ch) {
                    seen_word = true;
                } else if seen_word {
                    break;
                }
            }
            self.input.truncate(start);
            if t.lflag(ECHO) {
                if !kill && !word && !t.lflag(ECHOE) {
                    self.echo_char(c);
                } else if ch == b'\t' {
                    self.erase_tab();
                } else {
                    let twice = is_cntrl(ch) && t.lflag(ECHOCTL);
                    if twice {
                        self.echo_str(b"\x08 \x08");
                    }
                    if !is_cntrl(ch) || t.lflag(ECHOCTL) {
                        self.echo_str(b"\x08 \x08");
                    }
                }
            }
            if !kill && !word {
                break;
            }
        }
    }

    /// Backs the cursor over an erased tab: to the tab stop the characters before it
    /// (since the line's start or the previous tab) reached.
    fn erase_tab(&mut self) {
        let ctl = self.termios.lflag(ECHOCTL);
        let mut cols = 0usize;
        let mut after_tab = false;
        for cell in self.input.iter().skip(self.canon_head).rev() {
            if cell.c == b'\t' {
                after_tab = true;
                break;
            }
            if is_cntrl(cell.c) {
                if ctl {
                    cols += 2;
                }
            } else if !self.continuation(cell.c) {
                cols += 1;
            }
        }
        if !after_tab {
            cols += self.canon_column;
        }
        let back = (8 - (cols & 7)).min(self.column);
        for _ in 0..back {
            self.output.push_back(0x08);
            self.column = self.column.saturating_sub(1);
        }
    }

    // ---- Reading (the slave) ----

    /// Whether a read would find something: a complete line in canonical mode, else
    /// `amt` bytes.
    pub fn input_available(&self, amt: usize) -> bool {
        if self.canonical() {
            self.canon_head > 0
        } else {
            self.input.len() >= amt.max(1)
        }
    }

    /// `poll`'s `POLLIN` of the slave: as a read, but in raw mode with `VMIN` set and
    /// `VTIME` 0, `VMIN` bytes (as Linux).
    pub fn poll_in(&self) -> bool {
        let t = self.termios;
        let amt = if !self.canonical() && t.cc[VTIME] == 0 && t.cc[VMIN] > 0 {
            usize::from(t.cc[VMIN])
        } else {
            1
        };
        self.input_available(amt)
    }

    /// A canonical read: the next line, or as much of it as fits.
    pub fn read_canon(&mut self, buf: &mut [u8]) -> Canon {
        if self.canon_head == 0 {
            return Canon::Empty;
        }
        let mut n = 0;
        while n < buf.len() && self.canon_head > 0 {
            let Some(cell) = self.input.pop_front() else {
                break;
            };
            self.canon_head -= 1;
            if cell.mark == Mark::Eof {
                break;
            }
            buf[n] = cell.c;
            n += 1;
            if cell.mark == Mark::Eol {
                break;
            }
        }
        // A line ended by EOF that exactly filled the buffer: the marker goes too, so
        // the next read does not see an empty line.
        if n == buf.len()
            && self.canon_head > 0
            && self.input.front().is_some_and(|c| c.mark == Mark::Eof)
        {
            self.input.pop_front();
            self.canon_head -= 1;
        }
        Canon::Line(n)
    }

    /// A raw read: what is there, up to `buf.len()`.
    pub fn read_raw(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.input.len());
        for (dst, cell) in buf.iter_mut().zip(self.input.drain(..n)) {
            *dst = cell.c;
        }
        self.canon_head = self.canon_head.saturating_sub(n);
        n
    }

    /// `FIONREAD` of the slave: in canonical mode, the bytes of complete lines (without
    /// `EOF` characters).
    pub fn input_len(&self) -> usize {
        if self.canonical() {
            self.input
                .iter()
                .take(self.canon_head)
                .filter(|c| c.mark != Mark::Eof)
                .count()
        } else {
            self.input.len()
        }
    }

    /// `TCIFLUSH`: the read buffer and queued input.
    pub fn flush_input(&mut self) {
        self.pending.clear();
        self.reset_input();
    }

    fn reset_input(&mut self) {
        self.input.clear();
        self.canon_head = 0;
        self.lnext = false;
    }

    /// New settings (Linux's `n_tty_set_termios`): leaving canonical mode makes the
    /// buffer readable; entering it with bytes buffered ends them as a line.
    pub fn set_termios(&mut self, mut new: Termios, signals: &mut Vec<i32>) {
        // Linux's pty_set_termios: 8-bit characters, receiver on, no parity.
        new.cflag = (new.cflag & !(CSIZE | PARENB)) | CS8 | CREAD;
        let was_canon = self.canonical();
        self.termios = new;
        let canon = self.canonical();
        if was_canon != canon {
            self.lnext = false;
            if let Some(last) = self.input.back_mut() {
                if canon && last.mark == Mark::Char {
                    last.mark = Mark::Eol;
                }
            }
            self.canon_head = if canon { self.input.len() } else { 0 };
        }
        if !new.iflag(IXON) {
            self.stopped = false;
        }
        self.process_pending(signals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(l: &mut LineDiscipline, s: &[u8]) -> Vec<i32> {
        let mut sigs = Vec::new();
        assert_eq!(l.write_input(s, &mut sigs), s.len());
        sigs
    }

    fn echoed(l: &mut LineDiscipline) -> Vec<u8> {
        let mut buf = vec![0u8; OUTPUT_MAX];
        let n = l.read_output(&mut buf);
        buf.truncate(n);
        buf
    }

    fn line(l: &mut LineDiscipline) -> Canon {
        let mut buf = [0u8; 64];
        l.read_canon(&mut buf)
    }

    #[test]
    fn canonical_editing_and_echo_match_linux() {
        let mut l = LineDiscipline::new();
        typed(&mut l, b"ab\x7fc\n");
        assert_eq!(echoed(&mut l), b"ab\x08 \x08c\r\n");
        let mut buf = [0u8; 8];
        assert_eq!(l.read_canon(&mut buf), Canon::Line(3));
        assert_eq!(&buf[..3], b"ac\n");
        // A tab after a control character at the line's start: 4 columns back.
        typed(&mut l, b"\x01ab\tc\x7f\x7f\x7f");
        assert_eq!(
            echoed(&mut l),
            b"^Aab\tc\x08 \x08\x08\x08\x08\x08\x08 \x08".to_vec()
        );
        typed(&mut l, b"\x15foo bar\x17");
        assert_eq!(
            echoed(&mut l),
            b"\x08 \x08\x08 \x08\x08 \x08foo bar\x08 \x08\x08 \x08\x08 \x08"
        );
        typed(&mut l, b"\x04");
        assert_eq!(line(&mut l), Canon::Line(4), "foo + space, ended by EOF");
        typed(&mut l, b"\x04");
        assert_eq!(line(&mut l), Canon::Line(0), "EOF on an empty line");
        assert_eq!(line(&mut l), Canon::Empty);
        typed(&mut l, b"a\0b");
        assert_eq!(line(&mut l), Canon::Empty, "NUL is not a disabled EOL");
    }

    #[test]
    fn signals_flush_and_echo() {
        let mut l = LineDiscipline::new();
        let sigs = typed(&mut l, b"abc\x03");
        assert_eq!(sigs, vec![crate::kernel::signal::SIGINT]);
        assert_eq!(echoed(&mut l), b"^C", "the batch's echoes go");
        assert_eq!(l.input_len(), 0);
        typed(&mut l, b"x\n");
        assert_eq!(line(&mut l), Canon::Line(2), "the partial line was flushed");
        assert_eq!(
            typed(&mut l, b"\x1a\x1c"),
            vec![
                crate::kernel::signal::SIGTSTP,
                crate::kernel::signal::SIGQUIT
            ]
        );
    }

    #[test]
    fn raw_mode_and_mode_switches() {
        let mut l = LineDiscipline::new();
        typed(&mut l, b"half");
        assert!(!l.input_available(1));
        let mut raw = l.termios;
        raw.lflag &= !(ICANON | ECHO);
        l.set_termios(raw, &mut Vec::new());
        assert!(l.input_available(4) && !l.input_available(5));
        let mut buf = [0u8; 2];
        assert_eq!(l.read_raw(&mut buf), 2);
        let mut canon = raw;
        canon.lflag |= ICANON;
        l.set_termios(canon, &mut Vec::new());
        assert_eq!(line(&mut l), Canon::Line(2), "the rest became a line");
    }

    #[test]
    fn a_full_line_keeps_its_end() {
        let mut l = LineDiscipline::new();
        let mut sigs = Vec::new();
        let long = vec![b'a'; 5000];
        assert_eq!(l.write_input(&long, &mut sigs), 5000);
        l.write_input(b"\n", &mut sigs);
        assert_eq!(l.input_len(), INPUT_MAX);
        let mut buf = vec![0u8; 8192];
        assert_eq!(l.read_canon(&mut buf), Canon::Line(INPUT_MAX));
        assert_eq!(buf[INPUT_MAX - 1], b'\n');
    }

    #[test]
    fn output_processing_and_flow_control() {
        let mut l = LineDiscipline::new();
        assert_eq!(l.write_output(b"a\nb"), 3);
        assert_eq!(echoed(&mut l), b"a\r\nb");
        typed(&mut l, b"\x13");
        assert_eq!(l.write_output(b"x"), 0, "stopped by ^S");
        typed(&mut l, b"\x11");
        assert_eq!(l.write_output(b"x"), 1);
        assert_eq!(echoed(&mut l), b"x", "^S and ^Q are not echoed");
    }
}
