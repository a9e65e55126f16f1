//! A minimal sysfs: what programs read to count CPUs
//! (`/sys/devices/system/cpu/{online,possible,present}`, as glibc's `get_nprocs` and
//! language runtimes do).

use std::sync::Arc;

use super::dev::{new_dev, StaticDir, StaticFile};
use super::Inode;

/// The sysfs root. The sandbox shows the host's CPU count.
pub fn sysfs() -> Arc<dyn Inode> {
    let dev = new_dev();
    let cpus = crate::kernel::process::host_cpus();
    let range = if cpus > 1 {
        format!("0-{}\n", cpus - 1)
    } else {
        "0\n".to_string()
    };
    let f = |c: &str| StaticFile::new(dev, c) as Arc<dyn Inode>;
    let d = |v| StaticDir::new(dev, 0o755, v) as Arc<dyn Inode>;
    let cpu = d(vec![
        ("online", f(&range)),
        ("possible", f(&range)),
        ("present", f(&range)),
    ]);
    StaticDir::new(
        dev,
        0o555,
        vec![
            ("devices", d(vec![("system", d(vec![("cpu", cpu)]))])),
            // The mount point of the cgroup filesystem.
            ("fs", d(vec![("cgroup", d(vec![]))])),
            ("kernel", d(vec![])),
        ],
    )
}
