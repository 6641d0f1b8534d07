-- Plans say how much a user may do. A NULL limit means the deployment's default
-- (core's --create-rate, --create-burst, --read-rate, --read-burst), so the
-- "default" plan follows the flags until an operator pins it.
CREATE TABLE plans (
    name         text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    create_rate  int CHECK (create_rate > 0),
    create_burst int CHECK (create_burst > 0),
    read_rate    int CHECK (read_rate > 0),
    read_burst   int CHECK (read_burst > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO plans (name) VALUES ('default');

ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'default' REFERENCES plans (name);
