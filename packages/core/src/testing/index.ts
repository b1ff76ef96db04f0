export const placeholder = 'testing'
