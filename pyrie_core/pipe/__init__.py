"""The supervisor protocol (the "pipe") between the invoke front end and the supervisor: frames and messages."""
