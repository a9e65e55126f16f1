//! Credentials: user and group IDs (real, effective, saved, filesystem), supplementary
//! groups, and capabilities, with Linux's rules for how ID changes and `execve` move the
//! capabilities (`security/commoncap.c`).

use std::sync::Arc;

pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_LINUX_IMMUTABLE: u32 = 9;
pub const CAP_SYS_CHROOT: u32 = 18;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_NICE: u32 = 23;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_MKNOD: u32 = 27;
pub const CAP_MAC_OVERRIDE: u32 = 32;
/// The highest capability number (`/proc/sys/kernel/cap_last_cap`).
pub const CAP_LAST_CAP: u32 = 40;
/// Every capability.
pub const CAP_FULL: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;
/// What `fsuid` 0 means (Linux's `CAP_FS_SET`).
const CAP_FS_SET: u64 = bit(CAP_CHOWN)
    | bit(CAP_MKNOD)
    | bit(CAP_DAC_OVERRIDE)
    | bit(CAP_DAC_READ_SEARCH)
    | bit(CAP_FOWNER)
    | bit(CAP_FSETID)
    | bit(CAP_MAC_OVERRIDE)
    | bit(CAP_LINUX_IMMUTABLE);

/// The most supplementary groups (`NGROUPS_MAX`).
pub const NGROUPS_MAX: usize = 65536;

pub const fn bit(cap: u32) -> u64 {
    1 << cap
}

/// Whether `cap` names a capability.
pub fn cap_valid(cap: u64) -> bool {
    cap <= u64::from(CAP_LAST_CAP)
}

/// A task's capability sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    pub ambient: u64,
}

/// A task's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    /// The user ID file access is checked with (follows `euid` unless `setfsuid`).
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// Supplementary groups, sorted.
    pub groups: Arc<[u32]>,
    pub caps: Capabilities,
    /// `PR_SET_KEEPCAPS` (`SECBIT_KEEP_CAPS`): keep permitted capabilities when every
    /// user ID leaves 0. Cleared by `execve`.
    pub keep_caps: bool,
    /// `PR_SET_NO_NEW_PRIVS`: inherited, kept across `execve`, never cleared.
    pub no_new_privs: bool,
}

impl Default for Credentials {
    /// Root with every capability (the Sentry's own lookups, tests).
    fn default() -> Self {
        Self::new(0, 0)
    }
}

impl Credentials {
    /// The same IDs in every slot, no supplementary groups; root has every capability,
    /// any other user none (as after Linux's `execve` by that user).
    pub fn new(uid: u32, gid: u32) -> Self {
        let all = if uid == 0 { CAP_FULL } else { 0 };
        Self {
            uid,
            euid: uid,
            suid: uid,
            fsuid: uid,
            gid,
            egid: gid,
            sgid: gid,
            fsgid: gid,
            groups: Arc::from(Vec::new()),
            caps: Capabilities {
                effective: all,
                permitted: all,
                inheritable: 0,
                bounding: CAP_FULL,
                ambient: 0,
            },
            keep_caps: false,
            no_new_privs: false,
        }
    }

    /// Whether the effective set holds `cap`.
    pub fn capable(&self, cap: u32) -> bool {
        self.caps.effective & bit(cap) != 0
    }

    /// Whether `gid` is the filesystem group or a supplementary one (`in_group_p`).
    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.binary_search(&gid).is_ok()
    }

    /// After a change of real, effective or saved user IDs from `old`
    /// (`cap_emulate_setxuid`): leaving root drops capabilities, entering it as the
    /// effective ID raises the effective set to the permitted one.
    pub fn fix_setuid(&mut self, old: &Credentials) {
        let was_root = old.uid == 0 || old.euid == 0 || old.suid == 0;
        let is_root = self.uid == 0 || self.euid == 0 || self.suid == 0;
        if was_root && !is_root {
            if !self.keep_caps {
                self.caps.permitted = 0;
                self.caps.effective = 0;
            }
            self.caps.ambient = 0;
        }
        if old.euid == 0 && self.euid != 0 {
            self.caps.effective = 0;
        }
        if old.euid != 0 && self.euid == 0 {
            self.caps.effective = self.caps.permitted;
        }
    }

    /// After a change of `fsuid` from `old`: the filesystem capabilities follow it.
    pub fn fix_setfsuid(&mut self, old: &Credentials) {
        if old.fsuid == 0 && self.fsuid != 0 {
            self.caps.effective &= !CAP_FS_SET;
        }
        if old.fsuid != 0 && self.fsuid == 0 {
            self.caps.effective |= CAP_FS_SET & self.caps.permitted;
        }
    }

    /// `execve` of a program without file capabilities or set-ID bits
    /// (`cap_bprm_creds_from_file`): root gets its bounding and inheritable sets, others
    /// keep only their ambient set; saved IDs follow the effective ones.
    pub fn exec(&mut self) {
        let c = &mut self.caps;
        let mut effective = false;
        c.permitted = 0;
        if self.euid == 0 || self.uid == 0 {
            c.permitted = c.bounding | c.inheritable;
            effective = self.euid == 0;
        }
        c.permitted |= c.ambient;
        c.effective = if effective { c.permitted } else { c.ambient };
        self.suid = self.euid;
        self.fsuid = self.euid;
        self.sgid = self.egid;
        self.fsgid = self.egid;
        self.keep_caps = false;
    }

    /// For `access`/`faccessat` without `AT_EACCESS`: the real IDs check, and only root's
    /// real ID keeps capabilities.
    pub fn for_access(&self) -> Self {
        let mut c = self.clone();
        c.fsuid = self.uid;
        c.fsgid = self.gid;
        c.caps.effective = if self.uid == 0 {
            self.caps.permitted
        } else {
            0
        };
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_root_drops_capabilities_unless_kept() {
        let root = Credentials::new(0, 0);
        let mut c = root.clone();
        c.uid = 1000;
        c.euid = 1001;
        c.suid = 1002;
        c.fsuid = 1001;
        c.fix_setuid(&root);
        assert_eq!((c.caps.permitted, c.caps.effective), (0, 0));
        let mut k = root.clone();
        k.keep_caps = true;
        let old = k.clone();
        k.uid = 5;
        k.euid = 5;
        k.suid = 5;
        k.fsuid = 5;
        k.fix_setuid(&old);
        assert_eq!(k.caps.permitted, CAP_FULL, "keep_caps keeps permitted");
        assert_eq!(k.caps.effective, 0, "effective always goes");
    }

    #[test]
    fn exec_gives_root_its_bounding_set() {
        let mut c = Credentials::new(0, 0);
        c.caps.effective = 0;
        c.caps.permitted = 0;
        c.exec();
        assert_eq!(c.caps.effective, CAP_FULL);
        let mut u = Credentials::new(1000, 1000);
        u.exec();
        assert_eq!(u.caps.permitted, 0);
    }
}
