"""The `notify` exit-step component: records and announces how a run ended."""
