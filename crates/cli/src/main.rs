fn main() -> std::process::ExitCode {
    editshard::cli::main()
}
