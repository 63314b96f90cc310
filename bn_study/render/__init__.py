"""What a study renders: the figures' shared look (`plots`), and its outputs staged, switched into place whole and tied
to the tables they were drawn from (`outputs`)."""
