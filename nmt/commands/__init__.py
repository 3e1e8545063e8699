"""One module per CLI command: run(cfg, out_dir) wires a config to the library."""
