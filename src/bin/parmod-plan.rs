//! `parmod-plan`: compile kernel module load plans and show them.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(parmod::compiler::cli::run(&args));
}
