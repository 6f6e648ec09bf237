"""What a job is: the contract between forgeline and user code (processing, training, transform, @step)."""
