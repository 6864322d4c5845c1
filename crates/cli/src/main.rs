//! The `payerr` command. Thin by design: argument parsing and I/O here, every decision in the
//! `payerr` library. One module per command; a new command gets a module and a variant in `args`.

mod args;
mod catalog;
mod config;
mod explain;
mod failure;
mod gateway;
mod normalize;
mod render;
mod report;
mod serve;
mod simulate;

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

use crate::args::{Cli, Command};
use crate::failure::Failure;

/// mimalloc rather than the system's malloc: cheaper per allocation, and frees from another thread
/// (the event writer frees what the gateway's workers allocated) take no lock.
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

/// mimalloc, asked for an alignment only when the allocation needs more than every block has.
///
/// The `mimalloc` crate's allocator passes every alignment to `mi_malloc_aligned`, whose fast path
/// (in mimalloc v3) takes only blocks of at most 1 KiB: the gateway's larger buffers (read buffers,
/// boxed futures) took its slow path, about 1,000 instructions per request (bench/README.md).
/// `mi_malloc` aligns every block on 16 bytes but those of 8 bytes or less, on 8: enough for any
/// alignment up to 16 that is no larger than the size, the rule `std`'s system allocator applies to
/// `malloc`.
struct Allocator;

/// The alignment every `mi_malloc` block of at least this size has.
const MALLOC_ALIGN: usize = 16;

/// Whether `mi_malloc(size)` is aligned enough for `align`.
fn malloc_aligns(align: usize, size: usize) -> bool {
    align <= MALLOC_ALIGN && align <= size
}

/// A block of `layout` from `plain(size)` when that aligns it enough, else `aligned(size, align)`.
///
/// # Safety
/// `layout` has a non-zero size, as `GlobalAlloc::alloc` requires.
unsafe fn allocate(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: mimalloc's allocation calls take any size and a power-of-two alignment, which a
    // layout has.
    unsafe {
        if malloc_aligns(layout.align(), layout.size()) {
            plain(layout.size()).cast()
        } else {
            aligned(layout.size(), layout.align()).cast()
        }
    }
}

// SAFETY: every block comes from mimalloc with at least the layout's alignment (`malloc_aligns`),
// and goes back to it through `mi_free` or `mi_realloc*`, which take blocks of either kind.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain allocation calls, with the layout's size and alignment.
        unsafe { allocate(layout, mi_malloc, mi_malloc_aligned) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`; mimalloc skips the zeroing of memory fresh from the system.
        unsafe { allocate(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract).
        unsafe { mi_free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract); the new
        // block keeps the alignment.
        unsafe {
            if malloc_aligns(layout.align(), new_size) {
                mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

/// A value as one line of JSON. Serializing the CLI's own types cannot fail.
pub(crate) fn json_line<T: serde::Serialize>(value: &T) -> String {
    let mut text =
        serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    text.push('\n');
    text
}

fn run(cli: &Cli) -> Result<String, Failure> {
    // The gateway's file is its own (providers, listen, data_dir), so it is read by the gateway.
    if let Command::Gateway(args) = &cli.command {
        return gateway::run(cli.config.as_deref(), cli.catalog_dir.as_deref(), args);
    }
    let config = config::Config::load(cli.config.as_deref())?;
    let catalog_dir = config::catalog_dir(cli.catalog_dir.as_deref(), &config);
    let engine = config::engine(&config, catalog_dir.as_deref())?;
    match &cli.command {
        Command::Serve(args) => serve::run(config, catalog_dir, engine, args),
        Command::Explain(args) => explain::run(&engine, args),
        Command::Normalize(args) => normalize::run(&engine, args),
        Command::Catalog(command) => catalog::run(&engine, command),
        Command::Simulate(args) => simulate::run(&engine, args),
        Command::Report(args) => report::run(args),
        Command::Gateway(_) => unreachable!("handled above"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (text, code, to_stdout) = match run(&cli) {
        Ok(text) => (text, 0, true),
        Err(f) => {
            let text = if f.is_report {
                f.message
            } else {
                format!("payerr: {}\n", f.message.trim_end())
            };
            (text, f.exit_code, f.is_report)
        }
    };
    let written = if to_stdout {
        io::stdout()
            .write_all(text.as_bytes())
            .and_then(|()| io::stdout().flush())
    } else {
        io::stderr().write_all(text.as_bytes())
    };
    match written {
        // A closed pipe (`payerr ... | head`) is the reader's choice, not an error.
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => ExitCode::from(2),
        _ => ExitCode::from(code as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block of `layout` from `alloc` (or `alloc_zeroed`), checked for its alignment and filled
    /// with `fill`.
    fn block(layout: Layout, zeroed: bool, fill: u8) -> *mut u8 {
        // SAFETY: every layout of the test has a non-zero size; the caller frees the block.
        let block = unsafe {
            if zeroed {
                ALLOCATOR.alloc_zeroed(layout)
            } else {
                ALLOCATOR.alloc(layout)
            }
        };
        assert!(!block.is_null());
        let (size, align) = (layout.size(), layout.align());
        assert_eq!(block as usize % align, 0, "{size} bytes aligned on {align}");
        // SAFETY: the block has `size` bytes.
        unsafe {
            if zeroed {
                assert!(std::slice::from_raw_parts(block, size)
                    .iter()
                    .all(|b| *b == 0));
            }
            block.write_bytes(fill, size);
        }
        block
    }

    /// Every block, fresh, zeroed, grown or shrunk (in place or not), has its layout's alignment
    /// and keeps its content: many blocks of each size, so that one that merely happened to be
    /// aligned cannot hide a wrong choice of `mi_malloc`.
    #[test]
    fn the_allocator_aligns_every_block_as_its_layout_asks() {
        let sizes = [1, 2, 3, 7, 8, 12, 16, 24, 40, 100, 1000, 1025, 5000, 70_000];
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in sizes {
                let layout = Layout::from_size_align(size, align).expect("a layout");
                // Grown, shrunk to under its alignment, shrunk by a little (in place).
                for new_size in [size * 3 + 5, 1, size - size / 4] {
                    let blocks: Vec<*mut u8> = (0..64)
                        .map(|n| block(layout, n % 2 == 0, n as u8))
                        .collect();
                    for (n, block) in blocks.into_iter().enumerate() {
                        // SAFETY: `block` came from this allocator with `layout`, and is freed
                        // with the new one.
                        unsafe {
                            let block = ALLOCATOR.realloc(block, layout, new_size);
                            assert!(!block.is_null());
                            assert_eq!(
                                block as usize % align,
                                0,
                                "{size} → {new_size} bytes on {align}"
                            );
                            assert_eq!(*block, n as u8, "the content is kept");
                            let new = Layout::from_size_align(new_size, align).expect("a layout");
                            ALLOCATOR.dealloc(block, new);
                        }
                    }
                }
            }
        }
    }
}
