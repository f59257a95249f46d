fn main() {
    eprintln!("editshard: command line under construction");
    std::process::exit(2);
}
