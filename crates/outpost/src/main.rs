//! The `outpost` binary: the library's command line, on the `allocator` crate's mimalloc.

fn main() -> std::process::ExitCode {
    allocator::tune();
    outpost::main()
}
