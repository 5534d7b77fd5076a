//! Builds the test-only `gpemu` PostgreSQL extension with PGXS into OUT_DIR, so
//! the harness always loads a library that matches the checked-in C source.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../gpemu");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("gpemu");
    std::fs::create_dir_all(&out).expect("create OUT_DIR/gpemu");
    for file in ["Makefile", "gpemu.c"] {
        println!("cargo:rerun-if-changed={}", src.join(file).display());
        std::fs::copy(src.join(file), out.join(file)).expect("copy extension source");
    }
    println!("cargo:rerun-if-env-changed=PG_CONFIG");

    let pg_config = std::env::var("PG_CONFIG").unwrap_or_else(|_| "pg_config".into());
    let status = Command::new("make")
        .arg("-s")
        .arg(format!("PG_CONFIG={pg_config}"))
        // Cargo sets PROFILE=debug|release for build scripts, and PGXS appends
        // $(PROFILE) to CFLAGS, which gcc would take as an input file.
        .env_remove("PROFILE")
        .current_dir(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("`make` for the gpemu extension exited with {s}")),
        Err(e) => fail(&format!("cannot run `make`: {e}")),
    }
    println!(
        "cargo:rustc-env=GPEMU_LIBRARY={}",
        out.join("gpemu.so").display()
    );
}

fn fail(why: &str) -> ! {
    eprintln!(
        "{why}\nThe gpemu test extension needs a C compiler, make and the PostgreSQL server \
         headers (Debian: postgresql-server-dev-15). `bash scripts/test` installs them."
    );
    std::process::exit(1);
}
