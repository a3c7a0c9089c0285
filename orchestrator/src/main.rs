fn main() -> std::process::ExitCode {
    csdci::cli::main()
}
