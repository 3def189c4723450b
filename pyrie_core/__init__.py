"""pyrie's ground floor: shared pieces without I/O of their own, which every other package may use.

The frame codec and messages of the supervisor protocol (``pyrie_core.pipe``), Lambda's error catalogue, ids,
limits, addresses, function names, the names the supervisor and its front end agree on, and the state-machine
helper. Nothing here imports another package of pyrie.
"""
