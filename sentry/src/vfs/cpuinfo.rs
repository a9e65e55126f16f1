//! `/proc/cpuinfo`, from the CPUID instruction: one entry per CPU the sandbox may use,
//! with the fields programs read (vendor, model, family, flags, cache size, siblings).

use std::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};
use std::fmt::Write as _;

/// Register of a CPUID result.
#[derive(Clone, Copy)]
enum Reg {
    Ecx,
    Edx,
    Ebx,
}

/// `flags` entries as Linux names them: (leaf, subleaf, register, bit, name), in
/// Linux's order within each word.
const FLAGS: &[(u32, u32, Reg, u32, &str)] = &[
    (1, 0, Reg::Edx, 0, "fpu"),
    (1, 0, Reg::Edx, 1, "vme"),
    (1, 0, Reg::Edx, 2, "de"),
    (1, 0, Reg::Edx, 3, "pse"),
    (1, 0, Reg::Edx, 4, "tsc"),
    (1, 0, Reg::Edx, 5, "msr"),
    (1, 0, Reg::Edx, 6, "pae"),
    (1, 0, Reg::Edx, 7, "mce"),
    (1, 0, Reg::Edx, 8, "cx8"),
    (1, 0, Reg::Edx, 9, "apic"),
    (1, 0, Reg::Edx, 11, "sep"),
    (1, 0, Reg::Edx, 12, "mtrr"),
    (1, 0, Reg::Edx, 13, "pge"),
    (1, 0, Reg::Edx, 14, "mca"),
    (1, 0, Reg::Edx, 15, "cmov"),
    (1, 0, Reg::Edx, 16, "pat"),
    (1, 0, Reg::Edx, 17, "pse36"),
    (1, 0, Reg::Edx, 19, "clflush"),
    (1, 0, Reg::Edx, 23, "mmx"),
    (1, 0, Reg::Edx, 24, "fxsr"),
    (1, 0, Reg::Edx, 25, "sse"),
    (1, 0, Reg::Edx, 26, "sse2"),
    (1, 0, Reg::Edx, 27, "ss"),
    (1, 0, Reg::Edx, 28, "ht"),
    (0x8000_0001, 0, Reg::Edx, 11, "syscall"),
    (0x8000_0001, 0, Reg::Edx, 20, "nx"),
    (0x8000_0001, 0, Reg::Edx, 26, "pdpe1gb"),
    (0x8000_0001, 0, Reg::Edx, 27, "rdtscp"),
    (0x8000_0001, 0, Reg::Edx, 29, "lm"),
    (1, 0, Reg::Ecx, 0, "pni"),
    (1, 0, Reg::Ecx, 1, "pclmulqdq"),
    (1, 0, Reg::Ecx, 9, "ssse3"),
    (1, 0, Reg::Ecx, 12, "fma"),
    (1, 0, Reg::Ecx, 13, "cx16"),
    (1, 0, Reg::Ecx, 17, "pcid"),
    (1, 0, Reg::Ecx, 19, "sse4_1"),
    (1, 0, Reg::Ecx, 20, "sse4_2"),
    (1, 0, Reg::Ecx, 21, "x2apic"),
    (1, 0, Reg::Ecx, 22, "movbe"),
    (1, 0, Reg::Ecx, 23, "popcnt"),
    (1, 0, Reg::Ecx, 25, "aes"),
    (1, 0, Reg::Ecx, 26, "xsave"),
    (1, 0, Reg::Ecx, 28, "avx"),
    (1, 0, Reg::Ecx, 29, "f16c"),
    (1, 0, Reg::Ecx, 30, "rdrand"),
    (1, 0, Reg::Ecx, 31, "hypervisor"),
    (0x8000_0001, 0, Reg::Ecx, 0, "lahf_lm"),
    (0x8000_0001, 0, Reg::Ecx, 5, "abm"),
    (0x8000_0001, 0, Reg::Ecx, 8, "3dnowprefetch"),
    (7, 0, Reg::Ebx, 0, "fsgsbase"),
    (7, 0, Reg::Ebx, 3, "bmi1"),
    (7, 0, Reg::Ebx, 4, "hle"),
    (7, 0, Reg::Ebx, 5, "avx2"),
    (7, 0, Reg::Ebx, 7, "smep"),
    (7, 0, Reg::Ebx, 8, "bmi2"),
    (7, 0, Reg::Ebx, 9, "erms"),
    (7, 0, Reg::Ebx, 10, "invpcid"),
    (7, 0, Reg::Ebx, 11, "rtm"),
    (7, 0, Reg::Ebx, 16, "avx512f"),
    (7, 0, Reg::Ebx, 17, "avx512dq"),
    (7, 0, Reg::Ebx, 18, "rdseed"),
    (7, 0, Reg::Ebx, 19, "adx"),
    (7, 0, Reg::Ebx, 20, "smap"),
    (7, 0, Reg::Ebx, 21, "avx512ifma"),
    (7, 0, Reg::Ebx, 23, "clflushopt"),
    (7, 0, Reg::Ebx, 24, "clwb"),
    (7, 0, Reg::Ebx, 28, "avx512cd"),
    (7, 0, Reg::Ebx, 29, "sha_ni"),
    (7, 0, Reg::Ebx, 30, "avx512bw"),
    (7, 0, Reg::Ebx, 31, "avx512vl"),
    (0xd, 1, Reg::Ecx, 0, "xsaveopt"),
    (7, 0, Reg::Ecx, 1, "avx512vbmi"),
    (7, 0, Reg::Ecx, 2, "umip"),
    (7, 0, Reg::Ecx, 5, "waitpkg"),
    (7, 0, Reg::Ecx, 6, "avx512_vbmi2"),
    (7, 0, Reg::Ecx, 8, "gfni"),
    (7, 0, Reg::Ecx, 9, "vaes"),
    (7, 0, Reg::Ecx, 10, "vpclmulqdq"),
    (7, 0, Reg::Ecx, 11, "avx512_vnni"),
    (7, 0, Reg::Ecx, 12, "avx512_bitalg"),
    (7, 0, Reg::Ecx, 14, "avx512_vpopcntdq"),
    (7, 0, Reg::Ecx, 22, "rdpid"),
    (7, 0, Reg::Edx, 4, "fsrm"),
    (7, 0, Reg::Edx, 14, "serialize"),
];

fn leaf(leaf: u32, subleaf: u32) -> Option<CpuidResult> {
    let max = if leaf >= 0x8000_0000 {
        __cpuid(0x8000_0000).eax
    } else {
        __cpuid(0).eax
    };
    (leaf <= max).then(|| __cpuid_count(leaf, subleaf))
}

fn bytes(regs: &[u32]) -> String {
    let b: Vec<u8> = regs.iter().flat_map(|r| r.to_le_bytes()).collect();
    String::from_utf8_lossy(&b)
        .trim_matches(char::from(0))
        .trim()
        .to_string()
}

/// The flags the CPU reports, space-separated.
fn flags() -> String {
    let mut names = Vec::new();
    for &(l, sub, reg, bit, name) in FLAGS {
        let Some(r) = leaf(l, sub) else { continue };
        let value = match reg {
            Reg::Ecx => r.ecx,
            Reg::Edx => r.edx,
            Reg::Ebx => r.ebx,
        };
        if value & (1 << bit) != 0 {
            names.push(name);
        }
    }
    names.join(" ")
}

/// The text of `/proc/cpuinfo`, made once: it reads about a hundred CPUID leaves, and
/// each CPUID is a VM exit when the host itself is a virtual machine.
pub fn text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(generate)
}

fn generate() -> String {
    let n = crate::kernel::process::host_cpus();
    let vendor = leaf(0, 0).map_or_else(String::new, |r| bytes(&[r.ebx, r.edx, r.ecx]));
    let brand: Vec<u32> = (0x8000_0002..=0x8000_0004u32)
        .filter_map(|l| leaf(l, 0))
        .flat_map(|r| [r.eax, r.ebx, r.ecx, r.edx])
        .collect();
    let brand = bytes(&brand);
    let sig = leaf(1, 0).map_or(0, |r| r.eax);
    let base_family = (sig >> 8) & 0xf;
    let family = if base_family == 0xf {
        base_family + ((sig >> 20) & 0xff)
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xf {
        ((sig >> 4) & 0xf) | (((sig >> 16) & 0xf) << 4)
    } else {
        (sig >> 4) & 0xf
    };
    let stepping = sig & 0xf;
    let flags = flags();
    let (physical, virtual_) =
        leaf(0x8000_0008, 0).map_or((46, 48), |r| (r.eax & 0xff, (r.eax >> 8) & 0xff));
    let mut out = String::new();
    for i in 0..n {
        let _ = write!(
            out,
            "processor\t: {i}\nvendor_id\t: {vendor}\ncpu family\t: {family}\n\
             model\t\t: {model}\nmodel name\t: {brand}\nstepping\t: {stepping}\n\
             physical id\t: 0\nsiblings\t: {n}\ncore id\t\t: {i}\ncpu cores\t: {n}\n\
             fpu\t\t: yes\nfpu_exception\t: yes\nwp\t\t: yes\nflags\t\t: {flags}\n\
             clflush size\t: 64\ncache_alignment\t: 64\n\
             address sizes\t: {physical} bits physical, {virtual_} bits virtual\n\n"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_baseline_flags() {
        let text = super::text();
        let flags = text
            .lines()
            .find_map(|l| l.strip_prefix("flags\t\t: "))
            .expect("a flags line");
        for f in ["fpu", "sse2", "lm", "syscall"] {
            assert!(flags.split(' ').any(|x| x == f), "{f} in {flags}");
        }
    }
}
