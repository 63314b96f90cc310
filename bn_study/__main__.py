from bn_study.cli.commands import bn_study

bn_study()
