"""Measurements of a network's insides at evaluation time: the registry of probes, one entry per ProbeConfig switch
(`registry`), Figure 1's percentiles and the variance shift (`distributions`), the mechanisms studies' probes
(`mechanisms`), and BN's statistics recomputed (`precise_bn`)."""
