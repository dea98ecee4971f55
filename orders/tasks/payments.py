"""Payment tasks. (Placeholder until the checkout work lands.)"""

__all__: list[str] = []
