"""Live viewers: one pipeline (source -> inference -> display) and the nlos/stem views."""
