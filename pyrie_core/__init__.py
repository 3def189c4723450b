"""pyrie's ground floor: shared pieces, which every other package may use.

The frame codec and messages of the supervisor protocol (``pyrie_core.pipe``), Lambda's error catalogue, ids,
limits, addresses, function names, the names the supervisor and its front end agree on, and the state-machine
helper, all without I/O of their own. Three modules do I/O, for pieces the supervisor and its front end both need:
reading messages from and writing bytes to a socket (``socket_io``), how pyrie's processes are marked, found and
ended (``process_ownership``: ``/proc``, cgroups, signals), and ``prctl`` (``linux_prctl``). Nothing here imports
another package of pyrie.
"""
