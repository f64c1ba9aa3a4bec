"""The trust table of the shipped datasets (``auditkit datasets --audit``): for every task, its repeats, label
conflicts, class balance, what the words and the length alone read (:mod:`auditkit.methods.text_baselines`),
its known faults, and one flag (:mod:`auditkit.trust.flags`). No model runs here."""
