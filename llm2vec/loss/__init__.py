"""Losses, each computed inside a model's ``forward``: the Stage I reconstruction loss
(``reconstruction_loss``, ``fused_cross_entropy``) and the Stage II contrastive loss
(``hard_negative_nll_loss``, with ``distributed`` gathering and ``gradient_cache``)."""
