# consul config write consul/config/default-deny.intentions.hcl
# Nothing else talks to anything: every other pair is denied.
Kind = "service-intentions"
Name = "*"

Sources = [
  {
    Name   = "*"
    Action = "deny"
  },
]
