"""The chain: py-evm VM subclass, LevelDB storage and the one atomic block-import entry point."""
