//! Finds libfcgi-pm and libfcgi with pkg-config (PKG_CONFIG_PATH may name an
//! uninstalled build: its fcgi-pm-uninstalled.pc is preferred), and compiles
//! `pm_fcgx_accept_r` of `fcgi_pm_fcgx.h` with the C compiler ($CC, else cc; its
//! words after the first are arguments, as in "ccache cc").
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn probe(name: &str) -> pkg_config::Library {
    match pkg_config::Config::new().probe(name) {
        Ok(lib) => lib,
        Err(e) => panic!(
            "fcgi-pm-sys: pkg-config found no {name}: install it (libfcgi-pm: cmake --install; \
             libfcgi: apt-get install libfcgi-dev), or set PKG_CONFIG_PATH\n{e}"
        ),
    }
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("fcgi-pm-sys: {cmd:?}: {e}"));
    assert!(status.success(), "fcgi-pm-sys: {cmd:?} failed: {status}");
}

fn main() {
    let pm = probe("fcgi-pm");
    let fcgi = probe("fcgi");
    let includes: Vec<PathBuf> = pm.include_paths.iter().chain(&fcgi.include_paths).cloned().collect();

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let object = out.join("fcgx_accept.o");
    let archive = out.join("libfcgi_pm_sys_fcgx.a");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut words = cc.split_whitespace();
    let mut compile = Command::new(words.next().unwrap_or("cc"));
    compile.args(words);
    compile.args(["-c", "-O2", "-fPIC", "-Wall", "-Werror", "-o"]).arg(&object).arg("src/fcgx_accept.c");
    for dir in &includes {
        compile.arg("-I").arg(dir);
    }
    run(&mut compile);
    let _ = std::fs::remove_file(&archive);
    run(Command::new(env::var("AR").unwrap_or_else(|_| "ar".into())).arg("crs").arg(&archive).arg(&object));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=fcgi_pm_sys_fcgx");
    // Emitted again after the archive, which needs them.
    println!("cargo:rustc-link-lib=fcgi-pm");
    println!("cargo:rustc-link-lib=fcgi");

    let joined = env::join_paths(&includes).expect("include paths");
    println!("cargo:include={}", joined.to_string_lossy());
    // For tests/header.rs: the headers these declarations are checked against.
    println!("cargo:rustc-env=FCGI_PM_SYS_INCLUDE={}", joined.to_string_lossy());
    println!("cargo:rerun-if-changed=src/fcgx_accept.c");
    println!("cargo:rerun-if-env-changed=CC");
    for dir in &fcgi.include_paths {
        println!("cargo:rerun-if-changed={}", dir.join("fcgiapp.h").display());
    }
    for dir in &pm.include_paths {
        println!("cargo:rerun-if-changed={}", dir.join("fcgi_pm.h").display());
        println!("cargo:rerun-if-changed={}", dir.join("fcgi_pm_fcgx.h").display());
    }
}
