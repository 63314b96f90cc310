"""The networks: the registered builders, one module each (`builders/`), what each declares and the rules they share
(`builder`), the registry that finds them and checks a config against them without TensorFlow (`registry`), the
blocks they are made of (`blocks`), the normalised LSTM cell (`lstm_cell`), and the contract any builder, a user's
too, must keep (`contract`, which also builds a config's model)."""
