"""The networks: the registered builders (`builders`), the blocks they share (`blocks`), the normalised LSTM cell
(`lstm`), the contract any builder, a user's too, must keep (`contract`), and whether a config's network fits its data
(`shapes`)."""
