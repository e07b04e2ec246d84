//! Architectures shared by the test files.

use ato_zig::blocks::bottleneck;
use ato_zig::{Arch, ArchBuilder};

pub fn bottleneck_arch() -> Arch {
    let mut b = ArchBuilder::new();
    bottleneck(&mut b, "l", 64, 16, 1, (8, 8));
    b.finish().unwrap()
}
