"""Datasets as in-memory arrays, each with its spec (shapes, classes, split sizes) and a record of where it came from:
`datasets` (the registry and the loaders) and `mnist_format` (MNIST-format files a user already has)."""
