"""WebShop as a self-contained Gymnasium env: generated catalogue, BM25 search, faithful reward.

Modules: :mod:`~empo_gym.webshop.env` (``WebShopEnv``, registered as ``empo_gym/WebShop-v0``),
:mod:`~empo_gym.webshop.catalogue` (generated catalogue), :mod:`~empo_gym.webshop.vocab` (its
tables), :mod:`~empo_gym.webshop.loader` (original data files), :mod:`~empo_gym.webshop.search`
(bm25s index), :mod:`~empo_gym.webshop.reward` (``score_purchase``),
:mod:`~empo_gym.webshop.goals` (goals and splits), :mod:`~empo_gym.webshop.shop` (build, disk
cache, in-process sharing).

Example:
    >>> from empo_gym.webshop import score_purchase, normalize_color
    >>> normalize_color("heather grey")
    'grey'
"""

from __future__ import annotations

from empo_gym.webshop.reward import RewardBreakdown, normalize_color, score_purchase

__all__ = ["RewardBreakdown", "normalize_color", "score_purchase"]
