"""The registered model builders, one module each, each reading top to bottom like its paper's diagram. A module
here declares `BUILDER = Builder(...)` (models.builder) and is found by name: a new builder is its module and its
conf/model/<name>.yaml. The build functions import TensorFlow when called, so that the registry and its rules load
without it."""
