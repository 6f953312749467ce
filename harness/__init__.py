"""harness: a reproducible benchmark harness for paper-style CIFAR-10 studies."""

__version__ = "0.1.0"
