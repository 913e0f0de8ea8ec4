"""Local fakes of cloud services (Key Vault, ...), speaking their documented protocols over loopback."""
