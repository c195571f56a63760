"""infomax: image features learned by maximizing mutual information (Deep InfoMax with a KL prior)."""

__version__ = "0.1.0"
