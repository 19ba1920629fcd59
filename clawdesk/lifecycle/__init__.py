"""What happens after training: the pipeline (judge → train → gate → promote), atomic promotion
and rollback of adapter versions, and the lock that keeps two pipelines from running at once."""
