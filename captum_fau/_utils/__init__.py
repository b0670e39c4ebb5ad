"""Private plumbing shared by the whole library.

Module lookup and probing (:mod:`~captum_fau._utils.modules`), devices
(:mod:`~captum_fau._utils.device`), atomic file output (:mod:`~captum_fau._utils.io`),
argument checks (:mod:`~captum_fau._utils.validate`) and ``torch.distributed``
helpers (:mod:`~captum_fau._utils.distributed`). Nothing here is public API,
and nothing here imports from the rest of ``captum_fau`` except
:mod:`captum_fau.errors`, so every other package may depend on it.
"""
