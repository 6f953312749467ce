"""Study definitions: one module per study, each registering itself with harness.study."""
