"""The tile engine: settings, the loaded model + cache + generation service, single-flight and admission."""
