from .commands import bn_study

bn_study()
