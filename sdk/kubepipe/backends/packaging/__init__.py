"""What is shipped to a target: the compiled pipeline package and the runtime / project images."""
